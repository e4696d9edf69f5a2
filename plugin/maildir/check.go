package maildir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/mediagw/mediagw/plugin"
)

// Test checks that the folders exist (or can be created) and are writable by
// this process, and says what to fix when they are not.
//
// With a send: section it checks the send path too (AUTH at the relay, or
// that the outbox is writable), reported in the result's Send.
func (c *Connector) Test(ctx context.Context) plugin.TestResult {
	r := c.testRead(ctx)
	r.Send = c.testSend(ctx)
	return r
}

func (c *Connector) testRead(ctx context.Context) plugin.TestResult {
	c.mu.Lock()
	cfg, configured := c.cfg, c.configured
	c.mu.Unlock()
	if !configured {
		return plugin.TestResult{Category: plugin.TestError, Hint: "configure the connector first (path is required)"}
	}
	fi, err := os.Stat(cfg.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return plugin.TestResult{
			Category: plugin.TestMailboxNotFound,
			Hint:     fmt.Sprintf("create the folder (a Maildir: mkdir -p %[1]s/new %[1]s/cur %[1]s/tmp) or fix path", cfg.Path),
			Detail:   err.Error(),
		}
	case errors.Is(err, fs.ErrPermission):
		return denied(cfg.Path, err)
	case err != nil:
		return plugin.TestResult{Category: plugin.TestError, Hint: "check path", Detail: err.Error()}
	case !fi.IsDir():
		return plugin.TestResult{Category: plugin.TestError, Hint: "path must be a Maildir or a directory of .eml files, not a file", Detail: cfg.Path + " is not a directory"}
	}
	l, err := detect(cfg)
	if err != nil {
		return plugin.TestResult{Category: plugin.TestError, Hint: "check path", Detail: err.Error()}
	}
	// Reading needs r+x on the inbox and moving out of it needs w.
	if err := unix.Access(l.inbox, unix.R_OK|unix.W_OK|unix.X_OK); err != nil {
		return denied(l.inbox, err)
	}
	for _, d := range []struct{ key, dir string }{{"processed", l.processed}, {"failed", l.failed}} {
		if r, ok := checkTarget(d.key, d.dir); !ok {
			return r
		}
	}
	return plugin.TestResult{
		Category: plugin.TestOK,
		Detail:   fmt.Sprintf("%s folder %s; processed %s; failed %s", l.format, l.inbox, l.processed, l.failed),
	}
}

// checkTarget checks that dir is a writable directory, or that it can be
// created (its nearest existing parent is writable).
func checkTarget(key, dir string) (plugin.TestResult, bool) {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return plugin.TestResult{Category: plugin.TestError,
				Hint:   fmt.Sprintf("%s must be a directory; remove the file or choose another %s", dir, key),
				Detail: dir + " is not a directory"}, false
		}
		if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
			return denied(dir, err), false
		}
		return plugin.TestResult{}, true
	}
	if errors.Is(err, fs.ErrPermission) {
		return denied(dir, err), false
	}
	// Missing, or under a file (ENOTDIR): look at the nearest existing parent.
	parent := filepath.Dir(dir)
	for {
		fi, err := os.Stat(parent)
		if err == nil {
			if !fi.IsDir() {
				return plugin.TestResult{Category: plugin.TestError,
					Hint:   fmt.Sprintf("%s cannot be created: %s is a file; choose another %s", dir, parent, key),
					Detail: parent + " is not a directory"}, false
			}
			if err := unix.Access(parent, unix.W_OK|unix.X_OK); err != nil {
				return denied(parent, err), false
			}
			return plugin.TestResult{}, true
		}
		next := filepath.Dir(parent)
		if next == parent {
			return denied(dir, err), false
		}
		parent = next
	}
}

func denied(dir string, err error) plugin.TestResult {
	return plugin.TestResult{
		Category: plugin.TestPermissionDenied,
		Hint:     fmt.Sprintf("give the gateway's user read and write access to %s (e.g. chown or chmod u+rwx)", dir),
		Detail:   err.Error(),
	}
}
