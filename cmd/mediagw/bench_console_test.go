package main_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cpuTicks reads a process's user+system time in clock ticks.
func cpuTicks(tb testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// BenchmarkConsoleStreams measures the gateway's CPU while mail flows at
// about 100 activity events per second: first with no console open, then
// with 50 open activity streams, in one run. Run it once:
//
//	go test -run '^$' -bench ConsoleStreams -benchtime 1x ./cmd/mediagw
func BenchmarkConsoleStreams(b *testing.B) {
	s := newSite(b)
	s.editConfig("log:\n", "status:\n  listen: 127.0.0.1:0\n\nlog:\n")
	g := s.start()
	g.pluginPid(b)
	url := strings.TrimSuffix(statusURL.FindStringSubmatch(g.logText())[1], "/status")
	pid := g.cmd.Process.Pid
	const window = 10 * time.Second
	n := 0
	// phase drops about 15 mails a second (each makes about 7 events) for
	// the window and returns the gateway's CPU share and the event rate.
	phase := func() (cpu float64, events float64) {
		before, evBefore := cpuTicks(b, pid), strings.Count(g.logText(), " event=")
		start := time.Now()
		tick := time.NewTicker(time.Second / 15)
		for time.Since(start) < window {
			<-tick.C
			n++
			s.drop(fmt.Sprintf("%d.eml", n), mail(n))
		}
		tick.Stop()
		el := time.Since(start).Seconds()
		return float64(cpuTicks(b, pid)-before) / 100 / el, float64(strings.Count(g.logText(), " event=")-evBefore) / el
	}
	b.ResetTimer()
	for range b.N {
		cpu0, ev0 := phase()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var got atomic.Int64
		for range 50 {
			req, _ := http.NewRequestWithContext(ctx, "GET", url+"/events", nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer res.Body.Close()
				sc := bufio.NewScanner(res.Body)
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "data: ") {
						got.Add(1)
					}
				}
			}()
		}
		cpu50, ev50 := phase()
		cancel()
		wg.Wait()
		b.ReportMetric(cpu0*100, "cpu%-0streams")
		b.ReportMetric(cpu50*100, "cpu%-50streams")
		b.ReportMetric(ev0, "events/s-0streams")
		b.ReportMetric(ev50, "events/s-50streams")
		b.ReportMetric(float64(got.Load())/50/window.Seconds(), "events/s-per-stream")
	}
	b.StopTimer()
	g.stop(b)
}
