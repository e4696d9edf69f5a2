package main_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/host/console/passwd"
)

// mediagw hash-password prints a hash that the console accepts for the
// password it was given, and nothing else.
func TestHashPassword(t *testing.T) {
	bin := filepath.Join(binaries(t), "mediagw")
	cmd := exec.Command(bin, "hash-password")
	cmd.Stdin = strings.NewReader("correct horse battery\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hash-password: %v", err)
	}
	h := strings.TrimSpace(string(out))
	if strings.Contains(h, "correct horse") || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("output %q: want one line with only the hash", out)
	}
	if ok, err := passwd.Verify(h, "correct horse battery"); !ok || err != nil {
		t.Fatalf("the printed hash does not verify the password: %v %v", ok, err)
	}
	if ok, _ := passwd.Verify(h, "correct horse"); ok {
		t.Fatal("the hash verifies another password")
	}
	cmd = exec.Command(bin, "hash-password")
	cmd.Stdin = strings.NewReader("")
	if err := cmd.Run(); err == nil {
		t.Fatal("hash-password of nothing succeeded")
	}
}
