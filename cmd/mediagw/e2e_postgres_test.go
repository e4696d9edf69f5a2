package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/host/spool/pgspool"
	"github.com/mediagw/mediagw/internal/pgtest"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
)

// TestPostgresSpoolFromBbolt: the documented way from one host to several.
// A stopped gateway's bbolt spool (queued jobs, a failed one, remembered
// source ids) is exported into PostgreSQL twice (the second run adds
// nothing), the config switches to backend: postgres with migrate: manual,
// `spool migrate` brings the schema up, and the gateway delivers the
// exported jobs and new mail from the database, and still knows the mail
// the old spool took.
func TestPostgresSpoolFromBbolt(t *testing.T) {
	srv := pgtest.Start(t)
	// The test cluster trusts every login: the password is there to be
	// looked for in what the gateway prints.
	const pw = "pg-s3cret-pw"
	dsn := strings.Replace(srv.NewDB(t), "://postgres@", "://postgres:"+pw+"@", 1)
	if !strings.Contains(dsn, pw) {
		t.Fatalf("no password put into the DSN %s", dsn)
	}
	t.Setenv("MEDIAGW_TEST_DSN", dsn)
	s := newSite(t)
	ctx := context.Background()

	const old = 10
	if err := os.MkdirAll(filepath.Join(s.dir, "var/spool"), 0o700); err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Open(filepath.Join(s.dir, "var/spool/spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range old {
		id := fmt.Sprintf("20261201T000000.000Z-%04x.archive", i)
		j := &linedriver.Job{ID: id, Driver: "archive", Accepted: time.Now(), Record: linedriver.Record{
			ID: id, SourceID: fmt.Sprintf("maildir:old%04d.eml", i), Connector: "inbox", Received: time.Now(),
			Fields:    map[string]string{"subject": fmt.Sprintf("old %d", i), "sender": "a@example.com"},
			Documents: []linedriver.Document{{Name: "body.txt", MediaType: "text/plain", Data: []byte("body")}}}}
		if _, err := sp.Accept(ctx, "inbox", j.Record.SourceID, []*linedriver.Job{j}); err != nil {
			t.Fatal(err)
		}
	}
	e, _, err := sp.Lease(ctx, "archive", "t", time.Minute)
	if err != nil || e == nil {
		t.Fatalf("Lease = %v, %v", e, err)
	}
	failedID := e.Job.ID
	a := &spool.Attempt{N: 1, Result: "permanent", Reason: "disk says no"}
	if _, err := sp.Complete(ctx, failedID, "t", linedriver.Fail("io", "disk says no"), true, a, nil); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	// A job the file holds in bytes that do not decode: not copied, and
	// the operator is told so.
	const bad = "20261201T000000.000Z-bad.archive"
	db, err := bolt.Open(filepath.Join(s.dir, "var/spool/spool.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("jobs")).Put([]byte(bad), []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	out, code := mediagw(t, s, "spool", "export", "-c", s.cfg, "--to-postgres", "env:MEDIAGW_TEST_DSN")
	if !strings.Contains(out, "1 jobs could not be read and were not copied") || !strings.Contains(out, bad) {
		t.Errorf("spool export does not name the job it could not read:\n%s", out)
	}
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d queued and 1 failed jobs new (0 there already), %d source ids new", old-1, old)) {
		t.Fatalf("spool export: exit %d\n%s", code, out)
	}
	if strings.Contains(out, pw) || !strings.Contains(out, "postgres:xxxxx@") {
		t.Errorf("spool export names the database with its password, or without its redacted form:\n%s", out)
	}
	out, code = mediagw(t, s, "spool", "export", "-c", s.cfg, "--to-postgres", "env:MEDIAGW_TEST_DSN")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("0 queued and 0 failed jobs new (%d there already), 0 source ids new (%d there already)", old, old)) {
		t.Fatalf("spool export again: exit %d\n%s", code, out)
	}

	s.editConfig("  dir: var/spool", "  backend: postgres\n  dsn: env:MEDIAGW_TEST_DSN\n  migrate: manual\n  dir: var/spool")
	out, code = mediagw(t, s, "spool", "migrate", "-c", s.cfg, "--status")
	if code != 0 || !strings.Contains(out, "001_init") || !strings.Contains(out, "applied 20") {
		t.Fatalf("spool migrate --status: exit %d\n%s", code, out)
	}
	out, code = mediagw(t, s, "spool", "migrate", "-c", s.cfg)
	if code != 0 || !strings.Contains(out, "schema up to date") {
		t.Fatalf("spool migrate: exit %d\n%s", code, out)
	}

	const fresh = 20
	for i := range fresh {
		s.drop(fmt.Sprintf("m%04d.eml", i), mail(i))
	}
	s.drop("old0003.eml", mail(1003)) // taken by the old spool: not again
	g := s.start()
	waitFor(t, "the exported jobs and the new mail archived", 60*time.Second, func() bool {
		return s.distinctArchived() == old-1+fresh && s.count("var/Maildir/new") == 0
	}, g.logText)
	g.stop(t)
	if strings.Contains(g.logText(), "postgres://") && strings.Contains(g.logText(), "password") {
		t.Errorf("the log shows the DSN")
	}
	if strings.Contains(g.logText(), pw) {
		t.Errorf("the log shows the DSN's password")
	}
	seen := map[string]int{}
	for _, a := range s.archive() {
		seen[a.SourceID]++
	}
	if seen["maildir:old0003.eml"] > 1 {
		t.Errorf("a mail the bbolt spool took was taken again after the move: %d times", seen["maildir:old0003.eml"])
	}
	pg, err := pgspool.Open(ctx, pgspool.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	d, err := pg.Job(ctx, failedID)
	if err != nil || d.State != spool.StateFailed || d.LastError != "disk says no" || len(d.History) != 1 || d.Documents[0].Size != 4 {
		t.Fatalf("the failed job after the move = %+v, %v", d, err)
	}
	if st, err := pg.Stats(ctx); err != nil || st.Queued["archive"] != 0 || st.Failed != 1 {
		t.Fatalf("Stats after the run = %+v, %v", st, err)
	}
}

// TestPostgresCrashUnderGateway: PostgreSQL is killed (SIGKILL) and
// restarted while a gateway on it takes and delivers 300 mails. Mail the
// spool could not take is not acked (it stays in new/ and is read again),
// outcomes that could not be written are written again: every mail is
// archived, none is lost or left unsettled, and the spool's health goes
// degraded and back to healthy in the log.
func TestPostgresCrashUnderGateway(t *testing.T) {
	srv := pgtest.Start(t)
	t.Setenv("MEDIAGW_TEST_DSN", srv.NewDB(t))
	s := newSite(t)
	s.editConfig("  dir: var/spool", "  backend: postgres\n  dsn: env:MEDIAGW_TEST_DSN")
	const n = 300
	for i := range n {
		s.drop(fmt.Sprintf("m%04d.eml", i), mail(i))
	}
	g := s.start()
	waitFor(t, "a fifth of the mail archived", 60*time.Second, func() bool { return s.distinctArchived() >= n/5 }, g.logText)
	srv.Restart(true)
	waitFor(t, "every mail archived after the crash of PostgreSQL", 120*time.Second, func() bool {
		return s.distinctArchived() == n && s.count("var/Maildir/new") == 0
	}, g.logText)
	g.stop(t)
	// In flight at the crash: the maildir connector's 16 and the file
	// driver's 4 attempts.
	checkAllOnce(t, s, n, 20)
	log := g.logText()
	if !strings.Contains(log, `msg="spool health" component=spool health=degraded`) || !strings.Contains(log, `health=healthy was=degraded`) {
		t.Errorf("the log does not show the spool degraded and healthy again:\n%s", testenv.Tail(log, 40))
	}
}
