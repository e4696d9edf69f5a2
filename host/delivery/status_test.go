package delivery

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
)

// pager is a driver whose attempt reports a call and waits on page 2 of 3
// until released.
type pager struct {
	script
	onPage  chan struct{}
	release chan linedriver.Outcome
}

func (d *pager) Deliver(ctx context.Context, job *linedriver.Job, report func(linedriver.Progress)) linedriver.Outcome {
	report(linedriver.Progress{Step: "dial", Detail: "1002"})
	report(linedriver.Progress{Step: "tx", Detail: "DCS V.17"})
	report(linedriver.Progress{Step: "page", Detail: "2: 3000 bytes", Page: 2, Pages: 3})
	select {
	case d.onPage <- struct{}{}:
	case <-ctx.Done():
		return linedriver.Retry("interrupted", "stopped", 0)
	}
	select {
	case o := <-d.release:
		return o
	case <-ctx.Done():
		return linedriver.Retry("interrupted", "stopped", 0)
	}
}

// While an attempt runs, Active shows its step and page; its outcome and
// what the driver reported land in the job's history; attempts that never
// reach the line make the driver degraded, the next that does healthy
// again, each change logged once.
func TestActiveAttemptsHistoryAndHealth(t *testing.T) {
	sp := newSpool(t)
	accept(t, sp, "fax", "r1")
	d := &pager{script: script{name: "fax", slots: 1}, onPage: make(chan struct{}), release: make(chan linedriver.Outcome)}
	var log testenv.Buffer
	disp := New(d, sp, logger(&log), 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); disp.Run(ctx) }()
	defer func() { cancel(); <-done }()

	steps := []struct {
		outcome    linedriver.Outcome
		wantHealth string
		wantResult string
	}{
		{uncounted("no_modem"), "degraded", "temporary"},
		{uncounted("no_modem"), "degraded", "temporary"},
		{linedriver.Retry("busy", "BUSY", 0), "healthy", "temporary"},
		{linedriver.Fail("no_answer", "no fax machine answers"), "healthy", "permanent"},
	}
	for i, st := range steps {
		select {
		case <-d.onPage:
		case <-time.After(5 * time.Second):
			t.Fatalf("attempt %d did not start", i+1)
		}
		act := disp.Active()
		if len(act) != 1 || act[0].JobID != "r1.fax" || act[0].Step != "page" || act[0].Page != 2 || act[0].Pages != 3 || act[0].Started.IsZero() {
			t.Errorf("attempt %d: Active = %+v", i+1, act)
		}
		if !disp.Leased()["r1.fax"] {
			t.Errorf("attempt %d: the job is not leased", i+1)
		}
		d.release <- st.outcome
		waitUntil(t, "the outcome recorded", func() bool {
			j, err := sp.Job(t.Context(), "r1.fax")
			return err == nil && len(j.History) == i+1
		})
		if h := disp.Health(); h.Health != st.wantHealth {
			t.Errorf("after attempt %d: driver %+v, want %s", i+1, h, st.wantHealth)
		}
	}
	// The activity line follows the record in the spool.
	waitUntil(t, "the failed line", func() bool { return strings.Contains(log.String(), "event=failed") })
	j, err := sp.Job(t.Context(), "r1.fax")
	if err != nil {
		t.Fatal(err)
	}
	last := j.History[len(j.History)-1]
	if j.State != spool.StateFailed || last.Result != "permanent" || last.Category != "no_answer" ||
		!strings.Contains(last.Log, "dial 1002") || !strings.Contains(last.Log, "tx DCS V.17") || last.Ended.Before(last.Started) {
		t.Errorf("failed job %+v, last attempt %+v", j.JobInfo, last)
	}
	for re, n := range map[string]int{
		`level=WARN msg="driver health" health=degraded was=healthy message="no modem answers"`: 1,
		`level=INFO msg="driver health" health=healthy was=degraded`:                            1,
		`event=progress job=r1.fax step=page detail="2: 3000 bytes" page=2 pages=3`:             4,
		`event=failed .*call_seconds=`:                                                          1,
	} {
		if got := len(regexp.MustCompile(re).FindAllString(log.String(), -1)); got != n {
			t.Errorf("%d log lines match %s, want %d", got, re, n)
		}
	}
}
