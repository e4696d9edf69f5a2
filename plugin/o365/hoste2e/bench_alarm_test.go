package hoste2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/dc09/dc09rx"
)

// alarmMapYAML reads one alarm line  ACCOUNT EVENT ZONE PARTITION.
const alarmMapYAML = `description: alarm latency
fields:
  - name: line
    required: true
    from:
      - source: body
        line_match: '^\s*[0-9A-F]{3,16}\s+[A-Za-z_0-9]+\s+\d{1,3}\s+\d{1,2}\s*$'
  - name: alarm_account
    required: true
    from:
      - source: body
        line_match: '^\s*[0-9A-F]{3,16}\s+[A-Za-z_0-9]+\s+\d{1,3}\s+\d{1,2}\s*$'
        split: {index: 1}
  - name: alarm_event
    required: true
    from:
      - source: body
        line_match: '^\s*[0-9A-F]{3,16}\s+[A-Za-z_0-9]+\s+\d{1,3}\s+\d{1,2}\s*$'
        split: {index: 2}
  - name: alarm_zone
    required: true
    from:
      - source: body
        line_match: '^\s*[0-9A-F]{3,16}\s+[A-Za-z_0-9]+\s+\d{1,3}\s+\d{1,2}\s*$'
        split: {index: 3}
  - name: alarm_partition
    required: true
    from:
      - source: body
        line_match: '^\s*[0-9A-F]{3,16}\s+[A-Za-z_0-9]+\s+\d{1,3}\s+\d{1,2}\s*$'
        split: {index: 4}
routes:
  - drivers: [out]
`

func alarmMail(n int) []byte {
	return []byte("From: Panel <panel@site.example>\r\n" +
		"To: alarms@centre.example\r\n" +
		fmt.Sprintf("Subject: alarm %d\r\n", n) +
		fmt.Sprintf("Message-ID: <alarm%d@site.example>\r\n", n) +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
		fmt.Sprintf("1234 burglary %d 1\r\n", n%999))
}

// BenchmarkHostAlarmLatency: from the start of an APPEND on another
// connection to the DC-09 receiver's ACK of the signal the mail became
// (O365 connector with IDLE on the real Dovecot → alarm map → dc09 driver
// over TCP → dc09rx), to set beside BenchmarkHostPushLatency/dovecot-idle,
// the IDLE notify latency of the same Dovecot.
func BenchmarkHostAlarmLatency(b *testing.B) {
	p := startPeers(b)
	p.create(b, "lat-alarm")
	app := dial(b, p, nil)
	rx := &dc09rx.Receiver{}
	addr, err := rx.ListenTCP("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()

	s := newSite(b, p, "lat-alarm", nil, nil)
	if err := os.WriteFile(filepath.Join(s.dir, "map.yaml"), []byte(alarmMapYAML), 0o644); err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(s.cfg)
	if err != nil {
		b.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		b.Fatal(err)
	}
	cfg["drivers"] = map[string]any{"out": map[string]any{"type": "dc09", "options": map[string]any{
		"receivers": []map[string]string{{"address": addr}}, "state_dir": "dc09",
	}}}
	if raw, err = yaml.Marshal(cfg); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(s.cfg, raw, 0o644); err != nil {
		b.Fatal(err)
	}
	g := s.start()
	g.pluginPid(b)
	defer g.stop(b)

	n := 0
	appendOne(b, app, "lat-alarm", alarmMail(n)) // warm up: the session is connected
	waitFor(b, "warm-up signal", 30*time.Second, func() bool { return len(rx.Signals()) >= 1 }, g.output)
	var ds []time.Duration
	b.ResetTimer()
	for range max(b.N, latencySamples) {
		time.Sleep(50 * time.Millisecond) // settled and back in IDLE
		n++
		have := len(rx.Signals()) + 1
		start := time.Now()
		appendOne(b, app, "lat-alarm", alarmMail(n))
		deadline := start.Add(10 * time.Second)
		for len(rx.Signals()) < have {
			if time.Now().After(deadline) {
				b.Fatalf("no ACK; log:\n%s", testenv.Tail(g.output(), 30))
			}
			time.Sleep(time.Millisecond)
		}
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, ds)
}
