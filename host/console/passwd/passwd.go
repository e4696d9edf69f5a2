// Package passwd checks the password hashes of the console's users: bcrypt
// ($2a$, $2b$, $2y$) as `mediagw hash-password` writes them, and argon2id in
// the PHC string form ($argon2id$v=19$m=65536,t=3,p=4$salt$hash) that other
// tools write.
package passwd

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrUnknownFormat is returned for a hash that is neither bcrypt nor argon2id.
var ErrUnknownFormat = errors.New("passwd: not a bcrypt or argon2id hash")

// Cost is the bcrypt cost of new hashes.
const Cost = 12

// Hash returns a bcrypt hash of password.
func Hash(password string) (string, error) {
	if password == "" {
		return "", errors.New("passwd: empty password")
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), Cost)
	if err != nil {
		return "", fmt.Errorf("passwd: %w", err)
	}
	return string(b), nil
}

// Check reports whether hash is a well-formed bcrypt or argon2id hash.
func Check(hash string) error {
	switch {
	case isBcrypt(hash):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("passwd: bcrypt hash: %w", err)
		}
		return nil
	case strings.HasPrefix(hash, "$argon2id$"):
		_, err := parseArgon2id(hash)
		return err
	}
	return ErrUnknownFormat
}

// Verify reports whether password matches hash. A malformed hash is an error,
// a wrong password is (false, nil).
func Verify(hash, password string) (bool, error) {
	switch {
	case isBcrypt(hash):
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("passwd: bcrypt hash: %w", err)
		}
		return true, nil
	case strings.HasPrefix(hash, "$argon2id$"):
		p, err := parseArgon2id(hash)
		if err != nil {
			return false, err
		}
		got := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
		return subtle.ConstantTimeCompare(got, p.key) == 1, nil
	}
	return false, ErrUnknownFormat
}

func isBcrypt(h string) bool {
	return strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")
}

type argon2Params struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// parseArgon2id reads $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash> (base64
// without padding, as the reference implementation writes it).
func parseArgon2id(h string) (argon2Params, error) {
	var p argon2Params
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, errors.New("passwd: argon2id hash: want $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, fmt.Errorf("passwd: argon2id hash: version %q, want v=%d", parts[2], argon2.Version)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, fmt.Errorf("passwd: argon2id hash: parameters %q: want m=…,t=…,p=…", parts[3])
	}
	if p.memory == 0 || p.time == 0 || p.threads == 0 {
		return p, fmt.Errorf("passwd: argon2id hash: parameters %q must not be zero", parts[3])
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return p, fmt.Errorf("passwd: argon2id hash: salt: %w", err)
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < 16 {
		return p, errors.New("passwd: argon2id hash: the hash part is not base64 of at least 16 bytes")
	}
	return p, nil
}
