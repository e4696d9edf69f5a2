// Package testenv lets tests that need a real peer (Dovecot, iaxmodem, efax,
// libtiff, ghostscript) skip on a developer machine that lacks it, and fail in
// CI, where CI=true and every peer must be installed.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Skip skips the test with reason outside CI and fails it in CI.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("required in CI: %s", reason)
	}
	t.Skip(reason)
}

// LookPath returns the path of a peer program, or skips (fails in CI) when it
// is not installed.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Skip(t, name+" is not installed (see .ci/run for the packages)")
	}
	return p
}

// Short skips a slow real-time test under -short (never in CI).
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() && !InCI() {
		t.Skip("slow real-time test; skipped with -short")
	}
}
