package main_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// shipsNot lists what must never link into the production binary: the
// stand-ins and fakes of the tests and the demo, and what only they need.
// A package matches an entry when its import path is the entry or lies
// below it.
var shipsNot = []string{
	"github.com/mediagw/mediagw/internal/demo",                 // the demo rig and its stand-ins
	"github.com/mediagw/mediagw/internal/testenv",              // test helpers
	"github.com/mediagw/mediagw/internal/pgtest",               // private PostgreSQL clusters of the tests
	"github.com/mediagw/mediagw/internal/browsertest",          // the console's browser test rig
	"github.com/chromedp",                                      // drives the headless browser of the console tests
	"github.com/mediagw/mediagw/examples/demo",                 // the demo's config and mails
	"github.com/mediagw/mediagw/plugin/o365/o365test",          // identity, Graph and Dovecot stand-ins
	"github.com/mediagw/mediagw/plugin/plugintest",             // connector harness and conformance suite
	"github.com/mediagw/mediagw/linedriver/faxmodem/modemsim",  // the modem emulator
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4/t4test", // codec test helpers
	"github.com/mediagw/mediagw/linedriver/dc09/dc09rx",        // the DC-09 test receivers
	"github.com/mediagw/mediagw/linedriver/surgard/surgardrx",  // the Surgard test receiver
	"github.com/mediagw/mediagw/internal/smtpsink",             // the SMTP sink of the tests and the demo
	"github.com/golang-jwt/jwt/v5",                             // only the identity stand-in mints tokens
	"github.com/emersion/go-imap/v2/imapserver",                // the in-memory IMAP server (imapmemserver below it)
	"github.com/mediagw/mediagw/internal/demo/oauthimap",       // (below internal/demo; named for the reader)
	"github.com/mediagw/mediagw/plugin/o365/hoste2e",           // end-to-end tests of the o365 plugin
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver",  // (below imapserver; named for the reader)
}

// TestProductionBinaryLinksNoStandIns lists the packages linked into
// mediagw and fails on any stand-in, fake or test helper.
func TestProductionBinaryLinksNoStandIns(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/mediagw/mediagw/cmd/mediagw").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 || !slices.Contains(deps, "github.com/mediagw/mediagw/host") {
		t.Fatalf("go list -deps gave %d packages without the host: not the binary's dependencies\n%s", len(deps), out)
	}
	for _, dep := range deps {
		for _, bad := range shipsNot {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("mediagw links %s (must not ship: %s)", dep, bad)
				break
			}
		}
	}
}
