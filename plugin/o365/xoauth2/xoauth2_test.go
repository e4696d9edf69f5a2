package xoauth2

import (
	"bytes"
	"testing"
)

func TestInitialResponse(t *testing.T) {
	c := New("fax@example.com", "eyJ0b2tlbg")
	mech, ir, err := c.Start()
	if err != nil || mech != "XOAUTH2" {
		t.Fatalf("Start = %q, %v", mech, err)
	}
	want := []byte("user=fax@example.com\x01auth=Bearer eyJ0b2tlbg\x01\x01")
	if !bytes.Equal(ir, want) {
		t.Fatalf("initial response %q, want %q", ir, want)
	}
}

func TestNextRepliesOneByte(t *testing.T) {
	tests := []struct {
		name, challenge, status string
	}{
		{"dovecot", `{"status":"401","schemes":"bearer","scope":"openid"}`, "401"},
		{"gmail", `{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`, "400"},
		{"garbage", `not json`, "unknown"},
		{"empty object", `{}`, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New("u", "t")
			resp, err := c.Next([]byte(tt.challenge))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(resp, []byte{1}) {
				t.Fatalf("reply %q, want one 0x01 byte", resp)
			}
			if c.LastError == nil || c.LastError.Status != tt.status {
				t.Fatalf("LastError = %+v, want status %s", c.LastError, tt.status)
			}
		})
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add([]byte(`{"status":"401","schemes":"bearer"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseChallenge(b)
		if err == nil && e.Status == "" {
			t.Fatal("accepted a challenge without status")
		}
	})
}

func TestSMTPClientRepliesEmptyNonNil(t *testing.T) {
	c := NewSMTP("u", "t")
	resp, err := c.Next([]byte(`{"status":"401","schemes":"bearer","scope":"mail"}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp == nil || len(resp) != 0 {
		t.Fatalf("reply %q (nil: %v), want an empty non-nil reply", resp, resp == nil)
	}
	if c.LastError == nil || c.LastError.Status != "401" {
		t.Fatalf("LastError = %+v", c.LastError)
	}
}
