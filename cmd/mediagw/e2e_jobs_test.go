package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// withStatus makes the example site serve its API on a free port and give
// up on a job after one attempt.
func withStatus(s *site) {
	s.editConfig("spool:\n", "status:\n  listen: 127.0.0.1:0\nspool:\n")
	s.editConfig("max_attempts: 10", "max_attempts: 1")
}

func (g *gateway) apiURL(t *testing.T) string {
	t.Helper()
	var url string
	waitFor(t, "the status endpoint", 30*time.Second, func() bool {
		m := statusURL.FindStringSubmatch(g.logText())
		if m != nil {
			url = strings.TrimSuffix(m[1], "/status")
		}
		return m != nil
	}, g.logText)
	return url
}

// mediagw runs the CLI and returns its output and exit code.
func mediagw(t *testing.T, s *site, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "mediagw"), args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("mediagw %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

type jobDoc struct {
	ID        string            `json:"id"`
	State     string            `json:"state"`
	Attempts  int               `json:"attempts"`
	Category  string            `json:"category"`
	LastError string            `json:"last_error"`
	Fields    map[string]string `json:"fields"`
}

// TestJobsCommand: two mails fail for good (the archive folder cannot be
// made); the operator lists them, looks at one, purges the other, fixes the
// folder and retries the first, which is then delivered. `mediagw status`
// stays 0 throughout: failed jobs are reported apart from health.
func TestJobsCommand(t *testing.T) {
	s := newSite(t)
	withStatus(s)
	if err := os.MkdirAll(filepath.Join(s.dir, "var"), 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(s.dir, "var/archive")
	if err := os.WriteFile(archive, []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.drop("m1", mail(1))
	s.drop("m2", mail(2))
	g := s.start()
	defer g.stop(t)
	url := g.apiURL(t)

	var jobs []jobDoc
	waitFor(t, "two failed jobs", 30*time.Second, func() bool {
		out, code := mediagw(t, s, "jobs", "list", "--url", url, "--state", "failed", "--json")
		return code == 0 && json.Unmarshal([]byte(out), &jobs) == nil && len(jobs) == 2
	}, g.logText)
	for _, j := range jobs {
		if j.State != "failed" || j.Attempts != 1 || j.Category != "io" || !strings.Contains(j.Fields["sender"], "@example.com") {
			t.Errorf("failed job = %+v", j)
		}
	}
	keep, drop := jobs[0].ID, jobs[1].ID

	out, code := mediagw(t, s, "jobs", "list", "--url", url)
	if code != 0 || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(keep)+`\s+archive\s+failed\s+1\s`).MatchString(out) {
		t.Errorf("jobs list: exit %d\n%s", code, out)
	}
	out, code = mediagw(t, s, "status", "--url", url+"/status")
	if code != 0 || !strings.Contains(out, "failed for good: 2 job(s)") || !strings.Contains(out, "gateway: healthy") {
		t.Errorf("status with failed jobs: exit %d, want 0\n%s", code, out)
	}
	out, code = mediagw(t, s, "jobs", "show", keep, "--url", url)
	for _, want := range []string{`(?m)^state:\s+failed$`, `(?m)^  sender\s+sender\d@example.com$`, `body\.txt\s+text/plain`, `(?m)^  #1 .* permanent \(.*\) io: create `} {
		if code != 0 || !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("jobs show: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}

	if out, code = mediagw(t, s, "jobs", "purge", "--url", url, drop); code != 0 || !strings.Contains(out, "purged") {
		t.Errorf("jobs purge: exit %d\n%s", code, out)
	}
	if out, code = mediagw(t, s, "jobs", "show", "--url", url, drop); code != 1 || !strings.Contains(out, "not found") {
		t.Errorf("jobs show of a purged job: exit %d, want 1\n%s", code, out)
	}
	if out, code = mediagw(t, s, "jobs", "retry", "--url", url, "nope"); code != 1 || !strings.Contains(out, "not found") {
		t.Errorf("jobs retry nope: exit %d, want 1\n%s", code, out)
	}

	if err := os.Remove(archive); err != nil {
		t.Fatal(err)
	}
	if out, code = mediagw(t, s, "jobs", "retry", "--url", url, keep); code != 0 || !strings.Contains(out, "requeued") {
		t.Errorf("jobs retry: exit %d\n%s", code, out)
	}
	waitFor(t, "the retried job delivered", 30*time.Second, func() bool { return len(s.archive()) == 1 }, g.logText)
	out, _ = mediagw(t, s, "jobs", "list", "--url", url, "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("jobs left: %s", out)
	}
	for _, want := range []string{`event=requeued job=` + keep, `event=purged job=` + drop} {
		if !strings.Contains(g.logText(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
