package passwd

import (
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

func TestVerify(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("s3cret"), salt, 1, 8*1024, 1, 32)
	a2 := fmt.Sprintf("$argon2id$v=19$m=8192,t=1,p=1$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
	for _, tc := range []struct {
		name, hash, pw string
		ok, bad        bool
	}{
		{"bcrypt right", string(bc), "s3cret", true, false},
		{"bcrypt wrong", string(bc), "s3cre", false, false},
		{"argon2id right", a2, "s3cret", true, false},
		{"argon2id wrong", a2, "S3cret", false, false},
		{"plain text is no hash", "s3cret", "s3cret", false, true},
		{"argon2i is not argon2id", "$argon2i$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "x", false, true},
		{"argon2id without parameters", "$argon2id$v=19$$c2FsdA$aGFzaA", "x", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := Verify(tc.hash, tc.pw)
			if ok != tc.ok || (err != nil) != tc.bad {
				t.Fatalf("Verify = %v, %v; want %v, error %v", ok, err, tc.ok, tc.bad)
			}
			if cerr := Check(tc.hash); (cerr != nil) != tc.bad {
				t.Fatalf("Check = %v, want error %v", cerr, tc.bad)
			}
		})
	}
	if err := Check("nope"); !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("Check(nope) = %v, want ErrUnknownFormat", err)
	}
}

func TestHashRoundTrip(t *testing.T) {
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Verify(h, "correct horse"); !ok || err != nil {
		t.Fatalf("Verify(Hash(pw), pw) = %v, %v", ok, err)
	}
	if _, err := Hash(""); err == nil {
		t.Fatal("Hash(\"\") succeeded")
	}
}
