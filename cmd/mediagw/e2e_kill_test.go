package main_test

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mailWithAttachment is mail(i) as a multipart message with a small PDF.
func mailWithAttachment(i int) []byte {
	pdf := fmt.Sprintf("%%PDF-1.4\n%% attachment of message %d\n%s\n%%%%EOF\n", i, strings.Repeat("x", 2048))
	return []byte(fmt.Sprintf("From: sender%d@example.com\r\nTo: gw@example.com\r\nSubject: message %d Ref: M-%d\r\n"+
		"Message-ID: <m%d@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"+
		"--b\r\nContent-Type: text/plain\r\n\r\nBody of message %d.\r\n"+
		"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"order-%d.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n"+
		"--b--\r\n", i, i, i, i, i, i, base64.StdEncoding.EncodeToString([]byte(pdf))))
}

// TestKillAtRandomPoints kills the gateway (kill -9 of the host) and its
// plugin (kill -9 of the plugin process) at random points while 1,000 mails
// with attachments flow from a Maildir to the file driver, then checks what
// an operator would: every mail archived with its attachment, no source id
// with two jobs, every mail settled, and the re-deliveries (a job written
// again because its outcome was not yet recorded when the host died) counted
// and bounded by the host kills times the driver's slots.
func TestKillAtRandomPoints(t *testing.T) {
	const n, kills = 1000, 6
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	s := newSite(t)
	for i := 0; i < n; i++ {
		s.drop(fmt.Sprintf("m%04d.eml", i), mailWithAttachment(i))
	}
	var logs []string
	g := s.start()
	pid := g.pluginPid(t)
	// The random points: after a random share of the mails was archived,
	// and a random few milliseconds more; in order, so they spread over
	// the run.
	targets := make([]int, kills)
	for k := range targets {
		targets[k] = rng.IntN(n * 9 / 10)
	}
	slices.Sort(targets)
	hostKills, pluginKills := 0, 0
	for k, target := range targets {
		waitFor(t, fmt.Sprintf("%d archived before kill %d", target, k+1), 120*time.Second,
			func() bool { return len(s.archive()) >= target }, g.logText)
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
		// The host relaunches a crashed plugin after 5 s, then 10 s, 20 s…
		// (pluginmgr.DefaultBackoff); after two plugin kills in a row the
		// host is killed, which a new host process starts over.
		if rng.IntN(2) == 0 && pluginKills < 2 {
			pluginKills++
			t.Logf("kill %d: plugin pid %d with %d archived", k+1, pid, len(s.archive()))
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill plugin %d: %v", pid, err)
			}
			pid = g.pluginPid(t) // the host launches it again
			continue
		}
		t.Logf("kill %d: host with %d archived", k+1, len(s.archive()))
		hostKills++
		pluginKills = 0
		g.cmd.Process.Signal(syscall.SIGKILL)
		<-g.done
		syscall.Kill(pid, syscall.SIGKILL) // it exits by itself; never two readers
		logs = append(logs, g.logText())
		g = s.start()
		pid = g.pluginPid(t)
	}
	waitFor(t, "every mail archived and settled", 180*time.Second, func() bool {
		return s.count("var/Maildir/new") == 0 && s.count("var/Maildir/cur") == n && s.distinctArchived() == n
	}, g.logText)
	g.stop(t)
	logs = append(logs, g.logText())

	// No source id with two jobs: the archive has one folder per job.
	jobs := map[string][]string{}
	folders, _ := filepath.Glob(filepath.Join(s.dir, "var/archive/*/record.json"))
	for _, f := range folders {
		job := filepath.Base(filepath.Dir(f))
		if strings.HasPrefix(job, ".") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := regexp.MustCompile(`"source_id": "([^"]+)"`).FindSubmatch(b)
		if src == nil {
			t.Fatalf("%s has no source id", f)
		}
		jobs[string(src[1])] = append(jobs[string(src[1])], job)
		pdfs, _ := filepath.Glob(filepath.Join(filepath.Dir(f), "*order-*.pdf"))
		if len(pdfs) != 1 {
			t.Errorf("%s: %d PDF attachments archived, want 1", job, len(pdfs))
		}
	}
	for i := 0; i < n; i++ {
		src := fmt.Sprintf("maildir:m%04d.eml", i)
		switch js := jobs[src]; len(js) {
		case 0:
			t.Errorf("%s lost: never archived", src)
		case 1:
		default:
			t.Errorf("%s has %d jobs: %v", src, len(js), js)
		}
	}
	redelivered, writtenJobs := redeliveries(logs)
	const slots = 4 // the file driver's
	t.Logf("%d mails, %d kills (%d of the host): 0 lost, %d re-deliveries", n, kills, hostKills, redelivered)
	if redelivered > hostKills*slots {
		t.Errorf("%d re-deliveries after %d host kills; want at most %d (the attempts in flight)", redelivered, hostKills, hostKills*slots)
	}
	if writtenJobs < n*9/10 {
		t.Errorf("only %d jobs logged their write; the re-delivery count reads the log and cannot be trusted", writtenJobs)
	}
}

// writtenStep is the file driver's log line of one write ("written" step)
// and its job.
var writtenStep = regexp.MustCompile(`step=written .*job=(\S+)|job=(\S+) .*step=written`)

// redeliveries counts the writes beyond the first of each job in the
// gateways' logs (the re-deliveries), and the jobs that logged a write.
func redeliveries(logs []string) (redelivered, jobs int) {
	written := map[string]int{}
	for _, l := range logs {
		for _, m := range writtenStep.FindAllStringSubmatch(l, -1) {
			written[m[1]+m[2]]++
		}
	}
	for _, c := range written {
		redelivered += max(c-1, 0)
	}
	return redelivered, len(written)
}
