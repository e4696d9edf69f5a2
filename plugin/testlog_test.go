package plugin

import (
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/mediagw/mediagw/internal/testenv"
)

// goPluginLogMu guards hclog.DefaultOutput while a go-plugin test
// connection is made.
var goPluginLogMu sync.Mutex

// withTestLog runs fn, which makes a go-plugin test connection, with
// hclog's default output set to testenv.LogWriter. go-plugin's
// TestPluginGRPCConn logs at debug level to that default output (stderr)
// and offers no option for it; written straight to stderr, its lines would
// split the result lines of `go test -bench`, which benchstat parses.
func withTestLog(t testing.TB, fn func()) {
	w := testenv.LogWriter(t)
	goPluginLogMu.Lock()
	defer goPluginLogMu.Unlock()
	old := hclog.DefaultOutput
	hclog.DefaultOutput = w
	defer func() { hclog.DefaultOutput = old }()
	fn()
}
