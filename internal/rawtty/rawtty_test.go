package rawtty

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/creack/pty"
)

// Bytes written at the pty's master arrive unchanged at its tty side, and
// nothing is echoed back: what a serial line needs.
func TestBytesPassUnchanged(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"CR and NL", []byte("AT\r\nOK\r")},
		{"XON XOFF", []byte{0x11, 0x13, 'x'}},
		{"signals and editing", []byte{0x03, 0x1a, 0x7f, 0x15, 0x04}},
		{"DLE ETX and high bit", []byte{0x10, 0x03, 0xff, 0x80}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer ptmx.Close()
			defer tty.Close()
			if !Is(tty) {
				t.Fatal("a pty's tty is not a terminal")
			}
			if err := Make(tty); err != nil {
				t.Fatal(err)
			}
			if _, err := ptmx.Write(tc.data); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(tc.data))
			if _, err := io.ReadFull(tty, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Fatalf("tty read %q, want %q", got, tc.data)
			}
			// No echo: the first bytes back at the master are what the tty
			// side writes, not the data again.
			if _, err := tty.Write([]byte("OK")); err != nil {
				t.Fatal(err)
			}
			back := make([]byte, 2)
			if _, err := io.ReadFull(ptmx, back); err != nil {
				t.Fatal(err)
			}
			if string(back) != "OK" {
				t.Fatalf("master read %q first: the tty echoed", back)
			}
		})
	}
}

func TestNotATerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if Is(f) {
		t.Fatal("a file is a terminal")
	}
	if err := Make(f); err == nil {
		t.Fatal("Make on a file: no error")
	}
}
