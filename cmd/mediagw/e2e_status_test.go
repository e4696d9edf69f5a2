package main_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mediagw status asks the running gateway and prints its connectors and
// queues; it exits 1 when the gateway cannot be reached.
func TestStatusCommand(t *testing.T) {
	s := newTwoInboxSite(t)
	g := s.start()
	defer g.stop(t)
	pidA, pidB := g.connectorPids(t)
	url := statusURL.FindStringSubmatch(g.logText())[1]
	bin := filepath.Join(s.bin, "mediagw")

	out, err := exec.Command(bin, "status", "--url", url).CombinedOutput()
	if err != nil {
		t.Fatalf("mediagw status: %v\n%s", err, out)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^inbox\s+healthy\s+` + strconv.Itoa(pidA) + `\s+0\s`),
		regexp.MustCompile(`(?m)^inbox2\s+healthy\s+` + strconv.Itoa(pidB) + `\s+0\s`),
		regexp.MustCompile(`(?m)^failed for good: 0 job\(s\)$`),
	} {
		if !want.Match(out) {
			t.Errorf("status output lacks %s:\n%s", want, out)
		}
	}

	out, err = exec.Command(bin, "status", "--url", url, "--json").Output()
	var doc statusDoc
	if err != nil || json.Unmarshal(out, &doc) != nil || doc.Connectors["inbox"].Pid != pidA {
		t.Fatalf("status --json: %v\n%s", err, out)
	}

	// The config's listen address picks a free port: -c cannot know it.
	out, err = exec.Command(bin, "status", "-c", s.cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--url") {
		t.Fatalf("status -c with listen :0: %v\n%s", err, out)
	}

	g.stop(t)
	start := time.Now()
	out, err = exec.Command(bin, "status", "--url", url, "--timeout", "3s").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is the gateway running?") || time.Since(start) > 10*time.Second {
		t.Fatalf("status of a stopped gateway: %v\n%s", err, out)
	}
}
