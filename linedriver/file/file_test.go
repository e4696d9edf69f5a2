package file

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/linedriver"
)

func newDriver(t *testing.T, options string) *Driver {
	t.Helper()
	d, err := New("archive", json.RawMessage(options), nil)
	if err != nil {
		t.Fatal(err)
	}
	return d.(*Driver)
}

func job(id string, docs ...linedriver.Document) *linedriver.Job {
	return &linedriver.Job{
		ID: id, Driver: "archive", Attempt: 1,
		Record: linedriver.Record{
			ID: "r-" + id, SourceID: "imap:1:" + id, Connector: "inbox",
			Fields:    map[string]string{"fax_number": "5550100", "sender": "ops@example.com"},
			Documents: docs,
			Received:  time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC),
		},
	}
}

func noProgress(linedriver.Progress) {}

func TestNewOptions(t *testing.T) {
	for _, tc := range []struct {
		name, options, wantErr string
	}{
		{"ok", `{"dir":"out"}`, ""},
		{"missing dir", `{}`, "dir: missing"},
		{"unknown key", `{"dir":"out","dirr":"x"}`, `dirr: unknown key (valid keys: dir, require)`},
		{"wrong type", `{"dir":7}`, "dir: got a number, want a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New("archive", json.RawMessage(tc.options), nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "archive") {
				t.Fatalf("New error = %v, want one naming the driver and %q", err, tc.wantErr)
			}
		})
	}
}

func TestDeliverWritesRecordAndDocuments(t *testing.T) {
	dir := t.TempDir()
	d := newDriver(t, `{"dir":"out"}`)
	d.SetBaseDir(dir)
	pdf := []byte("%PDF-1.4 pretend")
	out := d.Deliver(context.Background(), job("job-1",
		linedriver.Document{Name: "report.pdf", MediaType: "application/pdf", Data: pdf},
		linedriver.Document{MediaType: "text/plain", Data: []byte("body")},
	), noProgress)
	if out.Result != linedriver.Delivered {
		t.Fatalf("outcome %+v", out)
	}
	folder := filepath.Join(dir, "out", "job-1")
	if out.Details["path"] != folder || out.Details["documents"] != "2" {
		t.Fatalf("details %v", out.Details)
	}
	got, err := os.ReadFile(filepath.Join(folder, "01-report.pdf"))
	if err != nil || !bytes.Equal(got, pdf) {
		t.Fatalf("document: %q, %v", got, err)
	}
	if b, _ := os.ReadFile(filepath.Join(folder, "02-document")); string(b) != "body" {
		t.Fatalf("unnamed document holds %q", b)
	}
	var rec recordFile
	b, err := os.ReadFile(filepath.Join(folder, "record.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.SourceID != "imap:1:job-1" || rec.Fields["fax_number"] != "5550100" || rec.Received != "2026-11-23T09:30:00Z" ||
		len(rec.Documents) != 2 || rec.Documents[0].Size != len(pdf) || rec.Documents[0].MediaType != "application/pdf" {
		t.Fatalf("record.json = %s", b)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "out", ".tmp-*")); len(tmp) != 0 {
		t.Fatalf("temporary folders left: %v", tmp)
	}
}

func TestSecondAttemptReplacesFirst(t *testing.T) {
	dir := t.TempDir()
	d := newDriver(t, `{"dir":"`+dir+`"}`)
	d.Deliver(context.Background(), job("j", linedriver.Document{Name: "a.txt", Data: []byte("one")}, linedriver.Document{Name: "b.txt", Data: []byte("two")}), noProgress)
	j := job("j", linedriver.Document{Name: "a.txt", Data: []byte("again")})
	j.Attempt = 2
	if out := d.Deliver(context.Background(), j, noProgress); out.Result != linedriver.Delivered {
		t.Fatalf("outcome %+v", out)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "j"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "01-a.txt,record.json" {
		t.Fatalf("folder after the second attempt holds %v, want only the second attempt's files", names)
	}
}

func TestNamesStayInsideTheDirectory(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	d := newDriver(t, `{"dir":"`+out+`"}`)
	res := d.Deliver(context.Background(), job("../escape", linedriver.Document{Name: "../../evil.sh", Data: []byte("x")},
		linedriver.Document{Name: "..", Data: []byte("y")}, linedriver.Document{Name: "a\x00b\nc", Data: []byte("z")}), noProgress)
	if res.Result != linedriver.Delivered {
		t.Fatalf("outcome %+v", res)
	}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && !strings.HasPrefix(p, out+string(filepath.Separator)) {
			t.Errorf("file written outside the output directory: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(out, "escape", "*"))
	if len(files) != 4 {
		t.Fatalf("want 3 documents and record.json in out/escape, got %v", files)
	}
}

func TestCheckRequiredFields(t *testing.T) {
	d := newDriver(t, `{"dir":"x","require":["fax_number","account"]}`)
	rec := job("j").Record
	err := d.Check(&rec)
	if err == nil || !strings.Contains(err.Error(), "account") || strings.Contains(err.Error(), "fax_number") {
		t.Fatalf("Check = %v, want the missing field account named", err)
	}
	rec.Fields["account"] = "1234"
	if err := d.Check(&rec); err != nil {
		t.Fatalf("Check with all fields: %v", err)
	}
}

func TestStaleTemporaryFoldersRemoved(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, ".tmp-123")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(stale, "record.json"), []byte("{"), 0o644)
	d := newDriver(t, `{"dir":"`+dir+`"}`)
	if out := d.Deliver(context.Background(), job("j"), noProgress); out.Result != linedriver.Delivered {
		t.Fatalf("outcome %+v", out)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale folder from an interrupted run is still there (%v)", err)
	}
}

func TestCancelledBeforeRenameIsRetried(t *testing.T) {
	dir := t.TempDir()
	d := newDriver(t, `{"dir":"`+dir+`"}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := d.Deliver(ctx, job("j", linedriver.Document{Name: "a", Data: []byte("a")}), noProgress)
	if out.Result != linedriver.Temporary || out.Category != "interrupted" {
		t.Fatalf("outcome %+v, want a temporary 'interrupted'", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "j")); !os.IsNotExist(err) {
		t.Fatal("a cancelled attempt left a record folder")
	}
}

func TestUnwritableDirectoryIsTemporary(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o644)
	d := newDriver(t, `{"dir":"`+filepath.Join(blocker, "out")+`"}`)
	out := d.Deliver(context.Background(), job("j"), noProgress)
	if out.Result != linedriver.Temporary || out.Category != "io" || !strings.Contains(out.Reason, "out") {
		t.Fatalf("outcome %+v, want a temporary io failure naming the directory", out)
	}
}
