package hoste2e_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
)

func msgID(n int) string { return fmt.Sprintf("m%d@example.org", n) }

// TestHostDelivers runs the gateway with the o365 connector into the file
// driver: mails with attachments arrive as records with their PDF; after the
// ack they are \Seen (or moved); a mail the map rejects sits in the failed
// folder with its reason in the state dir; and a mail APPENDed while the
// connector idles arrives although the poll interval is an hour.
func TestHostDelivers(t *testing.T) {
	p := startPeers(t)
	cases := []struct {
		name  string
		after string
		// where acked mail ends, and whether it is \Seen there
		ackedIn string
	}{
		{"seen", "seen", ""},
		{"move", "move:Processed", "Processed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			folder := "in-" + tc.name
			p.create(t, folder)
			base := map[string]bool{}
			var mails [][]byte
			for i := range 3 {
				n := 100*len(tc.name) + i
				mails = append(mails, o365test.Message(n))
				base[msgID(n)] = true
			}
			p.append(t, folder, append(mails, noSender(len(tc.name)))...)
			s := newSite(t, p, folder, nil, func(c map[string]any) { c["after_processing"] = tc.after })
			g := s.start()
			waitFor(t, "3 records and the rejected mail in the failed folder", 60*time.Second, func() bool {
				return len(s.records()) == 3 && len(p.folder(t, folder+"-failed")) == 1
			}, g.output)

			for _, r := range s.records() {
				if !base[r.Fields["message_id"]] || r.Fields["sender"] != "sender@example.org" {
					t.Errorf("record %s: fields %v", r.SourceID, r.Fields)
				}
				pdf := false
				for _, d := range r.Documents {
					if d.Name == "doc.pdf" && d.MediaType == "application/pdf" && d.Size > 0 {
						b, err := os.ReadFile(filepath.Join(s.dir, "out", filepath.Base(filepath.Dir(findRecord(t, s, r.SourceID))), d.File))
						pdf = err == nil && strings.HasPrefix(string(b), "%PDF-")
					}
				}
				if !pdf {
					t.Errorf("record %s lacks the PDF attachment: %+v", r.SourceID, r.Documents)
				}
			}
			failed := p.folder(t, folder+"-failed")
			if failed[0].MessageID != fmt.Sprintf("nosender%d@example.org", len(tc.name)) {
				t.Errorf("failed folder holds %q", failed[0].MessageID)
			}
			checkReason(t, s, "sender")

			// Push: one more mail while the connector idles.
			start := time.Now()
			n := 100*len(tc.name) + 50
			p.append(t, folder, o365test.Message(n))
			base[msgID(n)] = true
			waitFor(t, "the pushed mail at the driver", 15*time.Second, func() bool { return s.byMessageID()[msgID(n)] == 1 }, g.output)
			t.Logf("APPEND → record at the driver in %v (poll interval 1h)", time.Since(start).Round(time.Millisecond))

			// Settled on the server as configured.
			waitFor(t, "acks applied on the server", 15*time.Second, func() bool {
				where := folder
				if tc.ackedIn != "" {
					where = tc.ackedIn
				}
				seen := 0
				for _, m := range p.folder(t, where) {
					if base[m.MessageID] && m.Seen {
						seen++
					}
				}
				return seen == len(base)
			}, g.output)
			if tc.ackedIn != "" {
				if left := p.folder(t, folder); len(left) != 0 {
					t.Errorf("%d messages left in %s after move", len(left), folder)
				}
			}
			g.stop(t)
			for id, c := range s.byMessageID() {
				if c != 1 || !base[id] {
					t.Errorf("driver holds %s %d times", id, c)
				}
			}
		})
	}
}

func findRecord(t *testing.T, s *site, sourceID string) string {
	files, _ := filepath.Glob(filepath.Join(s.dir, "out/*/record.json"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), `"source_id": "`+sourceID+`"`) {
			return f
		}
	}
	t.Fatalf("no record for %s", sourceID)
	return ""
}

// checkReason finds the rejected mail's reason in the connector's state dir.
func checkReason(t *testing.T, s *site, want string) {
	t.Helper()
	f, err := os.Open(filepath.Join(s.state, "rejected.jsonl"))
	if err != nil {
		t.Fatalf("reject log: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil && strings.Contains(fmt.Sprint(e["reason"]), want) {
			return
		}
	}
	t.Errorf("no rejected.jsonl entry names %q", want)
}

// TestHost1000WithFaults pushes 1,000 messages through Dovecot → plugin →
// host → file driver while every peer fails once, and counts by Message-ID
// at the driver and on the server: none lost, none doubled.
func TestHost1000WithFaults(t *testing.T) {
	testenv.Short(t)
	p := startPeers(t)
	// Tokens live 4 s: sessions reconnect for fresh ones all through the run.
	p.id.SetTokenLifetime(4 * time.Second)
	const total, early, batch, ahead = 1000, 200, 25, 150
	var all [][]byte
	for i := range total {
		all = append(all, o365test.Message(i))
	}
	p.append(t, "INBOX", all[:early]...)
	s := newSite(t, p, "INBOX", nil, nil)
	start := time.Now()
	g := s.start()
	pid := g.pluginPid(t)
	progress := func(n int) func() bool { return func() bool { return len(s.records()) >= n } }

	// The rest arrive while the connector runs (IDLE push), kept at most
	// `ahead` messages in front of the driver so that every fault below
	// strikes with mail waiting. Faults hold mu: the appender's own
	// connections must not be cut.
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		end = make(chan struct{})
	)
	defer close(end)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := early; i < total; i += batch {
			for i-len(s.records()) > ahead {
				select {
				case <-end:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			mu.Lock()
			_, err := p.dc.Append(t.Context(), p.id.Mailbox, "INBOX", all[i:i+batch]...)
			mu.Unlock()
			if err != nil {
				t.Errorf("append: %v", err)
				return
			}
		}
	}()
	fault := func(at int, what string, f func()) {
		t.Helper()
		waitFor(t, fmt.Sprintf("%d records", at), 60*time.Second, progress(at), g.output)
		mu.Lock()
		defer mu.Unlock()
		t.Logf("fault at %d records: %s", len(s.records()), what)
		f()
	}

	fault(150, "Dovecot stopped and restarted", func() {
		if err := p.dc.Stop(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if err := p.dc.Start(); err != nil {
			t.Fatal(err)
		}
	})
	var issued int64
	fault(300, "the session's token expires, then the server ends the session", func() {
		issued = p.id.TokensIssued()
		time.Sleep(4 * time.Second)
		if err := p.dc.Kick(p.id.Mailbox); err != nil {
			t.Fatal(err)
		}
	})
	n := len(s.records())
	waitFor(t, "progress after the expired session", 60*time.Second, progress(n+20), g.output)
	if p.id.TokensIssued() <= issued {
		t.Fatal("no fresh token after the session ended")
	}
	fault(450, "identity platform answering 500 while the session is lost", func() {
		p.id.SetFault(o365test.Fault500)
		if err := p.dc.Kick(p.id.Mailbox); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		p.id.SetFault(o365test.FaultNone)
	})
	fault(650, fmt.Sprintf("plugin pid %d killed (SIGKILL) mid-batch", pid), func() {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	})
	if np := g.pluginPid(t); np == pid {
		t.Fatal("plugin not relaunched")
	}
	if !strings.Contains(g.output(), "connector stopped; relaunching") {
		t.Error("the host did not log the plugin's death")
	}
	wg.Wait()

	waitFor(t, "1,000 distinct messages at the driver", 120*time.Second, func() bool { return len(s.byMessageID()) == total }, g.output)
	waitFor(t, "1,000 messages \\Seen on the server", 60*time.Second, func() bool {
		seen := 0
		for _, m := range p.folder(t, "INBOX") {
			if m.Seen {
				seen++
			}
		}
		return seen == total
	}, g.output)
	took := time.Since(start)
	time.Sleep(time.Second) // anything offered twice would show now
	g.stop(t)

	atDriver := s.byMessageID()
	onServer := map[string]int{}
	for _, m := range p.folder(t, "INBOX") {
		onServer[m.MessageID]++
	}
	for i := range total {
		id := msgID(i)
		if atDriver[id] != 1 {
			t.Errorf("%s reached the driver %d times", id, atDriver[id])
		}
		if onServer[id] != 1 {
			t.Errorf("%s is %d times on the server", id, onServer[id])
		}
	}
	if len(atDriver) != total || len(onServer) != total {
		t.Errorf("%d distinct at the driver, %d on the server; want %d", len(atDriver), len(onServer), total)
	}
	t.Logf("1,000 messages with 4 faults in %v; %d tokens issued", took.Round(time.Millisecond), p.id.TokensIssued())
}
