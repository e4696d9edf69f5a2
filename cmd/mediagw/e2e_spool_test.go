package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

type compactionDoc struct {
	Before struct {
		FileBytes int64 `json:"file_bytes"`
	} `json:"before"`
	After struct {
		FileBytes int64 `json:"file_bytes"`
		LiveBytes int64 `json:"live_bytes"`
	} `json:"after"`
}

// TestSpoolCompactCommand: after a burst the operator compacts the spool of
// the running gateway (through its API) and of the stopped one (the file
// itself); the gateway then still knows every mail it took.
func TestSpoolCompactCommand(t *testing.T) {
	s := newSite(t)
	withStatus(s)
	const n = 150
	body := strings.Repeat("A long line of a mail body that fills the spool.\r\n", 40)
	for i := range n {
		s.drop(fmt.Sprintf("m%04d.eml", i), append(mail(i), body...))
	}
	g := s.start()
	url := g.apiURL(t)
	waitFor(t, "every mail archived", 60*time.Second, func() bool { return s.distinctArchived() == n }, g.logText)

	out, code := mediagw(t, s, "spool", "compact", "--url", url, "--json")
	var c compactionDoc
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil {
		t.Fatalf("spool compact of the running gateway: exit %d\n%s", code, out)
	}
	if c.After.FileBytes >= c.Before.FileBytes/2 {
		t.Errorf("running gateway: spool file %d → %d bytes; want it halved at least", c.Before.FileBytes, c.After.FileBytes)
	}
	if out, _ := mediagw(t, s, "status", "--url", url+"/status"); !regexp.MustCompile(`spool: healthy .*file \d+\.\d MiB \(live \d+\.\d MiB, free \d+\.\d MiB\)`).MatchString(out) {
		t.Errorf("mediagw status does not show the spool's size:\n%s", out)
	}
	// With status.listen on a free port the CLI cannot find the running
	// gateway from the config: it says so instead of touching the file.
	if out, code := mediagw(t, s, "spool", "compact", "-c", s.cfg); code != 1 || !strings.Contains(out, "a running gateway holds") {
		t.Errorf("spool compact -c while the gateway runs: exit %d\n%s", code, out)
	}
	g.stop(t)

	out, code = mediagw(t, s, "spool", "compact", "-c", s.cfg)
	if code != 0 || !strings.Contains(out, "spool compacted (gateway stopped") {
		t.Fatalf("spool compact of the stopped gateway: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "var/spool/spool.db.compact")); !os.IsNotExist(err) {
		t.Errorf("the compaction's copy is left: %v", err)
	}

	// The same mail again: the gateway remembers it took it.
	s.drop("m0007.eml", append(mail(7), body...))
	g = s.start()
	waitFor(t, "the mail offered again settled", 60*time.Second, func() bool { return s.count("var/Maildir/new") == 0 }, g.logText)
	waitFor(t, "its duplicate noted", 30*time.Second, func() bool { return strings.Contains(g.logText(), "event=duplicate") }, g.logText)
	g.stop(t)
	if got := len(s.archive()); got != n {
		t.Errorf("%d records archived, want %d: a mail the spool had taken was taken again after compaction", got, n)
	}
}
