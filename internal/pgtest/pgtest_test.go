package pgtest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/internal/testenv"
)

// psql runs one statement through Debian's psql, an independent client.
func psql(t *testing.T, dsn, sql string) string {
	t.Helper()
	out, err := exec.Command(testenv.LookPath(t, "psql"), "-X", "-A", "-t", "-c", sql, dsn).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestServerKeepsDataOverACrash(t *testing.T) {
	s := Start(t)
	dsn := s.NewDB(t)
	psql(t, dsn, "CREATE TABLE t (v int); INSERT INTO t VALUES (42)")
	s.Restart(true)
	if got := psql(t, dsn, "SELECT v FROM t"); got != "42" {
		t.Fatalf("after a crash and restart: %q, want 42", got)
	}
	s.Restart(false)
	if got := psql(t, dsn, "SELECT count(*) FROM t"); got != "1" {
		t.Fatalf("after a restart: %q rows, want 1", got)
	}
}
