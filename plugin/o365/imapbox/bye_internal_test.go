package imapbox

import (
	"strconv"
	"strings"
	"testing"
)

func TestByeScanner(t *testing.T) {
	const expired = "* BYE Session invalidated - AccessTokenExpired\r\n"
	body := "From: a@b\r\n\r\n" + expired + "* bye AccessTokenExpired\r\n"
	tests := []struct {
		name   string
		stream string
		want   string // "" when no BYE
	}{
		{"exchange", "* OK IDLE accepted\r\n" + expired, "Session invalidated - AccessTokenExpired"},
		{"lower case", "* bye Server shutting down\r\n", "Server shutting down"},
		{"no text", "* BYE\r\n", ""},
		{"tagged is not untagged", "a1 BYE nonsense\r\n", ""},
		{"BYEX is not BYE", "* BYEX AccessTokenExpired\r\n", ""},
		{"inside a literal", "* 1 FETCH (UID 7 BODY[] {" + strconv.Itoa(len(body)) + "}\r\n" + body + ")\r\na2 OK done\r\n", ""},
		{"non-sync literal", "* 1 FETCH (BODY[] {" + strconv.Itoa(len(body)) + "+}\r\n" + body + ")\r\n", ""},
		{"after a literal", "* 1 FETCH (BODY[] {" + strconv.Itoa(len(body)) + "}\r\n" + body + ")\r\n" + expired, "Session invalidated - AccessTokenExpired"},
		{"bare LF", "* BYE Session invalidated - AccessTokenExpired\n", "Session invalidated - AccessTokenExpired"},
		{"unfinished line", "* BYE Session invalidated - AccessTokenExpired", ""},
		{"long line", "* BYE " + strings.Repeat("x", 2000) + "\r\n", strings.Repeat("x", maxHead-6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Whole, and one byte at a time: reads split anywhere.
			for _, step := range []int{len(tt.stream), 1, 7} {
				var sc byeScanner
				got := ""
				for i := 0; i < len(tt.stream); i += step {
					if text, ok := sc.feed([]byte(tt.stream[i:min(i+step, len(tt.stream))])); ok {
						got = text
					}
				}
				if got != tt.want {
					t.Errorf("step %d: BYE text %q, want %q", step, got, tt.want)
				}
			}
		})
	}
	if !isTokenExpired("Session invalidated - AccessTokenExpired") || isTokenExpired("Server shutting down") {
		t.Error("isTokenExpired")
	}
}

func TestLiteralSize(t *testing.T) {
	for in, want := range map[string]int64{
		"* 1 FETCH (BODY[] {42}": 42, "{0}": 0, "{7+}": 7, "no literal": 0, "{}": 0, "{x}": 0,
		"{99999999999999999999}": 0, "}": 0,
	} {
		if got := literalSize([]byte(in)); got != want {
			t.Errorf("literalSize(%q) = %d, want %d", in, got, want)
		}
	}
}

// FuzzByeScanner: any stream, split anywhere, gives the same answer as
// whole, and never panics.
func FuzzByeScanner(f *testing.F) {
	f.Add([]byte("* BYE Session invalidated - AccessTokenExpired\r\n"), 3)
	f.Add([]byte("* 1 FETCH (BODY[] {5}\r\n* BYE)\r\n* BYE x\r\n"), 1)
	f.Fuzz(func(t *testing.T, data []byte, step int) {
		if step <= 0 || step > len(data) {
			step = len(data) + 1
		}
		var whole, split byeScanner
		w, wok := whole.feed(data)
		s, sok := "", false
		for i := 0; i < len(data); i += step {
			if text, ok := split.feed(data[i:min(i+step, len(data))]); ok {
				s, sok = text, true
			}
		}
		if w != s || wok != sok {
			t.Fatalf("whole %q %v, split by %d %q %v", w, wok, step, s, sok)
		}
	})
}
