package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{} // packages → folder
	errs    = map[string]error{}
)

// Binaries builds main packages (full import paths) into one temporary
// folder, once per test process, and returns the folder. The host finds its
// plugins beside the mediagw binary, so building them together makes a
// working installation. Call RunMain from TestMain to remove the folders.
func Binaries(t testing.TB, pkgs ...string) string {
	t.Helper()
	key := strings.Join(pkgs, " ")
	buildMu.Lock()
	defer buildMu.Unlock()
	if dir, ok := built[key]; ok {
		return dir
	}
	if err, ok := errs[key]; ok {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "mediagw-bin-")
	if err == nil {
		out, berr := exec.Command("go", append([]string{"build", "-o", dir + string(os.PathSeparator)}, pkgs...)...).CombinedOutput()
		if berr != nil {
			os.RemoveAll(dir)
			err = fmt.Errorf("go build %s: %v\n%s", key, berr, out)
		}
	}
	if err != nil {
		errs[key] = err
		t.Fatal(err)
	}
	built[key] = dir
	return dir
}

// RunMain runs the tests and removes what Binaries built.
func RunMain(m *testing.M) {
	code := m.Run()
	buildMu.Lock()
	for _, dir := range built {
		os.RemoveAll(dir)
	}
	buildMu.Unlock()
	os.Exit(code)
}
