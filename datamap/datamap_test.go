package datamap

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func mustLoad(t testing.TB, path, name string) *Map {
	t.Helper()
	spec, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Compile(name, spec)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readMail(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "mail", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestCorpusGolden runs the corpus map over every mail in testdata/mail and
// compares the preview with testdata/golden/corpus/NAME.txt.
func TestCorpusGolden(t *testing.T) {
	m := mustLoad(t, "testdata/corpus.yaml", "corpus")
	files, _ := filepath.Glob("testdata/mail/*.eml")
	if len(files) < 14 {
		t.Fatalf("corpus has %d mails", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".eml")
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			err := Try(&out, m, readMail(t, filepath.Base(f)))
			var rej *Rejection
			if err != nil && !errors.As(err, &rej) {
				t.Fatalf("Apply: %v", err)
			}
			golden(t, "corpus/"+name+".txt", out.Bytes())
		})
	}
}
