//go:build linux

package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mediagw/mediagw/internal/testenv"
)

// TestSpoolFullMakesGatewayDegraded: the gateway's spool file may not grow
// (RLIMIT_FSIZE on the running gateway: its writes fail with "file too
// large", as on a full disk). A large mail is deferred, and the gateway is
// degraded at once: `mediagw status` exits 1 and names the spool, the log
// says so once. When the file may grow again, the next write makes it
// healthy again, logged once, and the deferred mail was never taken from
// the Maildir.
func TestSpoolFullMakesGatewayDegraded(t *testing.T) {
	s := newSite(t)
	withStatus(s)
	g := s.start()
	defer g.stop(t)
	url := g.apiURL(t)
	g.pluginPid(t)
	waitFor(t, "a healthy gateway", 30*time.Second, func() bool {
		_, code := mediagw(t, s, "status", "--url", url+"/status")
		return code == 0
	}, g.logText)

	spoolFile := filepath.Join(s.dir, "var/spool/spool.db")
	fi, err := os.Stat(spoolFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := g.cmd.Process.Pid
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: uint64(fi.Size()), Max: unix.RLIM_INFINITY}, nil); err != nil {
		t.Fatalf("limit the spool's growth: %v", err)
	}
	big := []byte(fmt.Sprintf("From: big@example.com\r\nTo: gw@example.com\r\nSubject: large\r\nMessage-ID: <big@example.com>\r\n\r\n%s\r\n",
		strings.Repeat("0123456789abcdef ", 30000)))
	s.drop("big", big)

	var out string
	waitFor(t, "status exit 1", 30*time.Second, func() bool {
		var code int
		out, code = mediagw(t, s, "status", "--url", url+"/status")
		return code == 1
	}, g.logText)
	if !strings.Contains(out, "gateway: degraded") || !regexp.MustCompile(`spool: degraded\s+write errors [1-9]`).MatchString(out) ||
		!strings.Contains(out, "file too large") {
		t.Errorf("status while the spool cannot grow:\n%s", out)
	}
	waitFor(t, "the change and the deferral logged", 30*time.Second, func() bool {
		l := g.logText()
		return strings.Contains(l, "health=degraded was=healthy") && strings.Contains(l, "event=deferred source_id=maildir:big")
	}, g.logText)
	log := g.logText()
	degradedAt := logTime(t, log, `msg="spool health".*health=degraded`)
	deferredAt := logTime(t, log, `event=deferred source_id=maildir:big`)
	if d := deferredAt.Sub(degradedAt); d < -time.Second || d > time.Second {
		t.Errorf("degraded at %v, first deferral at %v: more than a second apart", degradedAt, deferredAt)
	}
	if s.count("var/Maildir/new") != 1 {
		t.Errorf("the deferred mail left the Maildir's new/")
	}

	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}, nil); err != nil {
		t.Fatal(err)
	}
	s.drop("small", mail(1))
	waitFor(t, "status exit 0 again", 30*time.Second, func() bool {
		var code int
		out, code = mediagw(t, s, "status", "--url", url+"/status")
		return code == 0
	}, g.logText)
	if !strings.Contains(out, "gateway: healthy") {
		t.Errorf("status once the spool can grow:\n%s", out)
	}
	waitFor(t, "the recovery logged", 30*time.Second, func() bool {
		return strings.Contains(g.logText(), "health=healthy was=degraded")
	}, g.logText)
	log = g.logText()
	for re, n := range map[string]int{`msg="spool health".*health=degraded was=healthy`: 1, `msg="spool health".*health=healthy was=degraded`: 1} {
		if got := len(regexp.MustCompile(re).FindAllString(log, -1)); got != n {
			t.Errorf("log has %d lines matching %s, want %d", got, re, n)
		}
	}
}

var logTimeRe = regexp.MustCompile(`^time=(\S+) `)

// logTime is the time of the first log line matching re.
func logTime(t *testing.T, log, re string) time.Time {
	t.Helper()
	r := regexp.MustCompile(re)
	for _, line := range strings.Split(log, "\n") {
		if r.MatchString(line) {
			if m := logTimeRe.FindStringSubmatch(line); m != nil {
				tm, err := time.Parse(time.RFC3339Nano, m[1])
				if err != nil {
					t.Fatal(err)
				}
				return tm
			}
		}
	}
	t.Fatalf("no log line matches %s:\n%s", re, testenv.Tail(log, 30))
	return time.Time{}
}
