package dc09

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Message is one DC-09 message before framing.
type Message struct {
	ID        string    // "SIA-DCS", "ADM-CID", "NULL" (without the * of encryption)
	Seq       int       // 1–9999
	Receiver  string    // hex receiver number, "" for none
	Line      string    // hex line prefix, "0" when the centre sets none
	Account   string    // hex account
	Data      string    // the first block without brackets, e.g. "#1234|Nri1/BA001"; "" for NULL
	Ext       []string  // extended blocks without brackets, e.g. "Iburglary hall"
	Time      time.Time // the timestamp; zero: none (plain messages only)
	Encrypted bool
}

// timeLayout is the DC-09 timestamp: _HH:MM:SS,MM-DD-YYYY in UTC.
const timeLayout = "_15:04:05,01-02-2006"

// crc16 is CRC-16/ARC (polynomial 0x8005 reflected, initial value 0), the
// checksum DC-09 puts in front of each message.
func crc16(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c ^= uint16(x)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
	}
	return c
}

// frame wraps the id-to-end part: <LF><crc><0LLL>body<CR>.
func frame(body []byte) []byte {
	out := make([]byte, 0, len(body)+10)
	out = append(out, '\n')
	out = fmt.Appendf(out, "%04X0%03X", crc16(body), len(body))
	out = append(out, body...)
	return append(out, '\r')
}

// ErrKey is wrapped by errors about an encryption key.
var ErrKey = errors.New("dc09: bad key")

// ParseKey reads a key given as 32, 48 or 64 hex digits (AES-128/192/256).
func ParseKey(s string) ([]byte, error) {
	k, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%w: want hex digits", ErrKey)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("%w: want 32, 48 or 64 hex digits (AES-128, -192, -256), got %d", ErrKey, len(k)*2)
}

// Encode frames m. With a key the message is encrypted (its ID gains a *):
// the part from the first block's content to the timestamp is padded at the
// front with random characters to a multiple of 16 bytes, a | separating pad
// and data, encrypted with AES-CBC and a zero IV, and sent as hex. pad is the
// source of the pad characters (crypto/rand when nil).
func (m Message) Encode(key []byte, pad io.Reader) ([]byte, error) {
	if m.Seq < 0 || m.Seq > 9999 {
		return nil, fmt.Errorf("dc09: sequence %d out of range", m.Seq)
	}
	var b strings.Builder
	b.WriteByte('"')
	if key != nil {
		b.WriteByte('*')
	}
	b.WriteString(m.ID)
	b.WriteByte('"')
	fmt.Fprintf(&b, "%04d", m.Seq)
	if m.Receiver != "" {
		b.WriteString("R" + m.Receiver)
	}
	line := m.Line
	if line == "" {
		line = "0"
	}
	b.WriteString("L" + line)
	b.WriteString("#" + m.Account)
	b.WriteByte('[')
	// The rest: content]ext_timestamp
	var rest strings.Builder
	rest.WriteString(m.Data)
	rest.WriteByte(']')
	for _, e := range m.Ext {
		rest.WriteString("[" + e + "]")
	}
	if !m.Time.IsZero() {
		rest.WriteString(m.Time.UTC().Format(timeLayout))
	} else if key != nil {
		return nil, fmt.Errorf("dc09: an encrypted message needs a timestamp")
	}
	if key == nil {
		b.WriteString(rest.String())
		return frame([]byte(b.String())), nil
	}
	ct, err := encrypt(key, "|"+strings.TrimPrefix(rest.String(), "|"), pad)
	if err != nil {
		return nil, err
	}
	b.WriteString(strings.ToUpper(hex.EncodeToString(ct)))
	return frame([]byte(b.String())), nil
}

// padChars are what pad bytes are drawn from: printable, never | [ ].
const padChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// encrypt pads text at the front (at least one character, to a multiple
// of the block size) and encrypts it with AES-CBC, IV zero.
func encrypt(key []byte, text string, pad io.Reader) ([]byte, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	n := aes.BlockSize - len(text)%aes.BlockSize
	if pad == nil {
		pad = rand.Reader
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(pad, p); err != nil {
		return nil, fmt.Errorf("dc09: pad: %w", err)
	}
	for i := range p {
		p[i] = padChars[int(p[i])%len(padChars)]
	}
	pt := append(p, text...)
	ct := make([]byte, len(pt))
	cipher.NewCBCEncrypter(blk, make([]byte, aes.BlockSize)).CryptBlocks(ct, pt)
	return ct, nil
}

// decrypt reverses encrypt and drops the pad up to the first |.
func decrypt(key []byte, hexText string) (string, error) {
	ct, err := hex.DecodeString(hexText)
	if err != nil || len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return "", fmt.Errorf("dc09: encrypted part is not hex blocks of 16 bytes")
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrKey, err)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(blk, make([]byte, aes.BlockSize)).CryptBlocks(pt, ct)
	i := strings.IndexByte(string(pt), '|')
	if i < 0 {
		return "", fmt.Errorf("dc09: decrypted text has no | after its pad (wrong key?)")
	}
	return string(pt[i:]), nil
}

// Kind of a receiver's reply.
type Kind int

const (
	ACK Kind = iota + 1
	NAK
	DUH
)

func (k Kind) String() string {
	switch k {
	case ACK:
		return "ACK"
	case NAK:
		return "NAK"
	case DUH:
		return "DUH"
	}
	return "reply(" + strconv.Itoa(int(k)) + ")"
}

// Reply is a receiver's answer to one message.
type Reply struct {
	Kind      Kind
	Seq       int
	Receiver  string
	Line      string
	Account   string
	Time      time.Time // the receiver's clock; zero when the reply has none
	Encrypted bool
}

// ErrReply is wrapped by errors about a malformed reply.
var ErrReply = errors.New("dc09: malformed reply")

// ParseReply reads one reply frame (LF … CR, the CR optional). key decrypts
// an encrypted ACK (*ACK); it may be nil for plain links.
func ParseReply(b []byte, key []byte) (Reply, error) {
	var r Reply
	s := string(b)
	s = strings.TrimPrefix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	if len(s) < 8 {
		return r, fmt.Errorf("%w: too short", ErrReply)
	}
	crc, err := strconv.ParseUint(s[:4], 16, 16)
	if err != nil {
		return r, fmt.Errorf("%w: crc %q", ErrReply, s[:4])
	}
	if s[4] != '0' {
		return r, fmt.Errorf("%w: length %q", ErrReply, s[4:8])
	}
	n, err := strconv.ParseUint(s[5:8], 16, 16)
	if err != nil {
		return r, fmt.Errorf("%w: length %q", ErrReply, s[4:8])
	}
	body := s[8:]
	if int(n) != len(body) {
		return r, fmt.Errorf("%w: length %d, body has %d", ErrReply, n, len(body))
	}
	if uint16(crc) != crc16([]byte(body)) {
		return r, fmt.Errorf("%w: crc %04X, body gives %04X", ErrReply, crc, crc16([]byte(body)))
	}
	if !strings.HasPrefix(body, `"`) {
		return r, fmt.Errorf("%w: no id", ErrReply)
	}
	end := strings.IndexByte(body[1:], '"')
	if end < 0 {
		return r, fmt.Errorf("%w: id not closed", ErrReply)
	}
	id := body[1 : end+1]
	body = body[end+2:]
	if strings.HasPrefix(id, "*") {
		r.Encrypted, id = true, id[1:]
	}
	switch id {
	case "ACK":
		r.Kind = ACK
	case "NAK":
		r.Kind = NAK
	case "DUH":
		r.Kind = DUH
	default:
		return r, fmt.Errorf("%w: id %q", ErrReply, id)
	}
	if r.Encrypted && r.Kind != ACK {
		return r, fmt.Errorf("%w: encrypted %s", ErrReply, id)
	}
	if len(body) < 4 {
		return r, fmt.Errorf("%w: sequence", ErrReply)
	}
	seq, err := strconv.Atoi(body[:4])
	if err != nil || seq < 0 {
		return r, fmt.Errorf("%w: sequence %q", ErrReply, body[:4])
	}
	r.Seq = seq
	body = body[4:]
	open := strings.IndexByte(body, '[')
	if open < 0 {
		return r, fmt.Errorf("%w: no data block", ErrReply)
	}
	head, rest := body[:open], body[open+1:]
	if strings.HasPrefix(head, "R") {
		i := strings.IndexByte(head, 'L')
		if i < 0 {
			return r, fmt.Errorf("%w: no line prefix", ErrReply)
		}
		r.Receiver, head = head[1:i], head[i:]
	}
	if !strings.HasPrefix(head, "L") {
		return r, fmt.Errorf("%w: no line prefix", ErrReply)
	}
	head = head[1:]
	if i := strings.IndexByte(head, '#'); i >= 0 {
		r.Line, r.Account = head[:i], head[i+1:]
	} else {
		r.Line = head
	}
	if r.Encrypted {
		if key == nil {
			return r, fmt.Errorf("%w: encrypted ACK on a plain link", ErrReply)
		}
		pt, err := decrypt(key, rest)
		if err != nil {
			return r, fmt.Errorf("%w: %v", ErrReply, err)
		}
		rest = strings.TrimPrefix(pt, "|")
	}
	close := strings.LastIndexByte(rest, ']')
	if close < 0 {
		return r, fmt.Errorf("%w: data block not closed", ErrReply)
	}
	if ts := rest[close+1:]; ts != "" {
		t, err := parseStamp(ts)
		if err != nil {
			return r, fmt.Errorf("%w: timestamp %q", ErrReply, ts)
		}
		r.Time = t
	} else if r.Kind == NAK || r.Encrypted {
		return r, fmt.Errorf("%w: %s without a timestamp", ErrReply, id)
	}
	return r, nil
}

// parseStamp reads _HH:MM:SS,MM-DD-YYYY. (time.Parse would take ",01" after
// the seconds for a fraction.)
func parseStamp(s string) (time.Time, error) {
	if len(s) != 20 || s[0] != '_' || s[9] != ',' {
		return time.Time{}, errors.New("not _HH:MM:SS,MM-DD-YYYY")
	}
	return time.Parse("15:04:05 01-02-2006", s[1:9]+" "+s[10:])
}
