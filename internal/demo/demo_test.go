package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSamples(t *testing.T) {
	ss, err := Samples()
	if err != nil {
		t.Fatal(err)
	}
	rejects := 0
	for _, s := range ss {
		if s.Subject == "" || len(s.Raw) == 0 {
			t.Errorf("%s: no subject or empty", s.File)
		}
		if s.Reject {
			rejects++
		}
	}
	if len(ss) != 4 || rejects != 1 {
		t.Fatalf("%d samples, %d to reject; want 4 and 1", len(ss), rejects)
	}
}

// TestBrokenPluginFailsLoudly runs the demo with a connector binary that is
// not a plugin: the demo must fail within its timeout and say why.
func TestBrokenPluginFailsLoudly(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "mediagw-connector-o365")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho 'this is not a plugin' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	start := time.Now()
	_, err := Run(context.Background(), Options{Dir: filepath.Join(t.TempDir(), "d"), Out: &out, Plugin: bad, Timeout: 4 * time.Second})
	if err == nil {
		t.Fatalf("the demo succeeded with a broken plugin:\n%s", out.String())
	}
	for _, want := range []string{"the connector never reached IDLE", "timed out", "last problems the gateway reported", "gateway.log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	t.Logf("the demo said: %v", err)
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestDirMustBeEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), Options{Dir: dir, Plugin: "/bin/true"})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("err = %v, want a refusal of a folder that is not empty", err)
	}
}
