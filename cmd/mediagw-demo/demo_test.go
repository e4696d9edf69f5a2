package main_test

// Black-box tests of `mediagw-demo`: the built binary with the built
// connector plugins beside it, as `make demo` runs it.

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

// binaries builds the demo and the connector plugins into one folder.
func binaries(t testing.TB) string {
	t.Helper()
	return testenv.Binaries(t, "github.com/mediagw/mediagw/cmd/mediagw-demo",
		"github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir",
		"github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
}

type demoRun struct {
	code           int
	stdout, stderr string
}

func runDemoBinary(t *testing.T, bin string, env []string, args ...string) demoRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if env != nil {
		cmd.Env = env
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := demoRun{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	return r
}

// inkOf decodes a PNG page and returns its size and its share of dark pels.
func inkOf(t *testing.T, path string) (image.Rectangle, float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
				dark++
			}
		}
	}
	return b, float64(dark) / float64(b.Dx()*b.Dy())
}

func TestDemo(t *testing.T) {
	bin := filepath.Join(binaries(t), "mediagw-demo")
	dir := filepath.Join(t.TempDir(), "demo")
	r := runDemoBinary(t, bin, nil, "--dir", dir)
	if r.code != 0 {
		t.Fatalf("mediagw-demo: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// Every step is narrated.
	for _, step := range []string{
		"identity: access token issued", "mailbox: XOAUTH2 login as fax@example.com: token verified",
		"mailbox: IDLE", "mail arrives in INBOX", "gateway: mapped \"Invoice 1001\": fax_number=+12015550100",
		"fax: dialling 912015550100", "fax: training at V.17", "fax: sending page 1", "fax line: page 1 received",
		"fax: DELIVERED \"Invoice 1001\"", "mailbox: STORE uid 1 \\Seen",
	} {
		if !strings.Contains(r.stdout, step) {
			t.Errorf("output lacks %q", step)
		}
	}
	// The summary names each received page; each exists and has ink.
	pngs := regexp.MustCompile(`(?m)^\s+(\S+\.png)$`).FindAllStringSubmatch(r.stdout, -1)
	faxes := map[string]int{}
	for _, m := range pngs {
		p := m[1]
		if !strings.HasPrefix(p, dir) {
			t.Errorf("page %s is outside the demo folder %s", p, dir)
		}
		bounds, ink := inkOf(t, p)
		if bounds.Dx() != 1728 || bounds.Dy() < 1000 {
			t.Errorf("%s: %v, want a 1728-pel wide page", p, bounds)
		}
		if ink < 0.001 {
			t.Errorf("%s: %.4f ink, want a page with something on it", p, ink)
		}
		if _, err := os.Stat(strings.TrimSuffix(p, ".png") + ".tif"); err != nil {
			t.Errorf("no TIFF beside %s: %v", p, err)
		}
		faxes[filepath.Base(p)[:5]]++
	}
	if len(faxes) != 3 {
		t.Errorf("pages of %d faxes in the summary (%v), want 3 (PDF, photo, text)\n%s", len(faxes), faxes, r.stdout)
	}
	all, _ := filepath.Glob(filepath.Join(dir, "received", "*.png"))
	if len(all) != len(pngs) {
		t.Errorf("%d PNG files in received/, the summary lists %d", len(all), len(pngs))
	}
	// The bad number was rejected with its reason and moved aside.
	if !regexp.MustCompile(`(?m)^\s+rejected\s+"Fax: 1-900-555-0199 special offer"\s+.*\+19005550199 is a premium-rate number \(premium_rate in dial\.deny_types\) \(moved to the mailbox folder mediagw-failed\)$`).MatchString(r.stdout) {
		t.Errorf("no rejection of the premium-rate mail in the summary:\n%s", r.stdout)
	}
	log, err := os.ReadFile(filepath.Join(dir, "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "driver=fax event=delivered"); n != 3 {
		t.Errorf("gateway.log: %d faxes delivered, want 3", n)
	}
	// Every sender got a report in their own mailbox: the three faxed ones
	// that it was delivered, the premium-rate one why it was not sent.
	if n := strings.Count(string(log), "driver=report:fax-mailbox event=delivered"); n != 4 {
		t.Errorf("gateway.log: %d reports sent, want 4", n)
	}
	for _, want := range []string{
		`report    "Invoice 1001"                     → alice@contoso.example: "Fax to 2015550100 (+12015550100) delivered (2 pages)" (in alice@contoso.example's INBOX)`,
		`report    "Fax: 1-900-555-0199 special offer" → dave@contoso.example: "Fax not sent: Fax: 1-900-555-0199 special offer" (in dave@contoso.example's INBOX)`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if n := strings.Count(string(log), "event=rejected"); n != 1 {
		t.Errorf("gateway.log: %d rejections, want 1", n)
	}
	secret, _ := os.ReadFile(filepath.Join(dir, "client-secret.txt"))
	if s := strings.TrimSpace(string(secret)); s == "" || strings.Contains(r.stdout+r.stderr+string(log), s) {
		t.Error("the client secret is empty or appears in the output or the log")
	}
}

// TestDemoWithoutGhostscript: on a machine without ghostscript (PATH holds
// only the built binaries) the demo still faxes its PDF, drawn by the
// embedded PDFium.
func TestDemoWithoutGhostscript(t *testing.T) {
	bins := binaries(t)
	env := []string{"PATH=" + bins, "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}
	dir := filepath.Join(t.TempDir(), "demo")
	r := runDemoBinary(t, filepath.Join(bins, "mediagw-demo"), env, "--dir", dir)
	if r.code != 0 {
		t.Fatalf("mediagw demo without gs: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, `fax: DELIVERED "Invoice 1001"`) || strings.Contains(r.stdout, "skipping") {
		t.Errorf("the PDF mail was not faxed:\n%s", r.stdout)
	}
	log, err := os.ReadFile(filepath.Join(dir, "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "driver=fax event=delivered"); n != 3 {
		t.Errorf("gateway.log: %d faxes delivered, want 3 (PDF, photo, text)", n)
	}
}

func TestDemoWithoutPluginFailsClearly(t *testing.T) {
	src := filepath.Join(binaries(t), "mediagw-demo")
	alone := filepath.Join(t.TempDir(), "mediagw-demo")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + t.TempDir(), "HOME=" + t.TempDir()}
	start := time.Now()
	r := runDemoBinary(t, alone, env, "--dir", filepath.Join(t.TempDir(), "demo"))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"demo failed", "mediagw-connector-o365", "make build"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("failing took %s; it should fail before starting anything", d)
	}
}

func TestDemoMaildirExample(t *testing.T) {
	bin := filepath.Join(binaries(t), "mediagw-demo")
	r := runDemoBinary(t, bin, nil, "--example", "maildir", "--dir", t.TempDir())
	if r.code != 0 || !strings.Contains(r.stdout, "2 archived, 1 rejected") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestDemoFaxIn: the received-fax demo says its line is simulated, mails
// the two faxes for sales (the cut one marked incomplete) with their PDF and
// TIFF, and files the third.
func TestDemoFaxIn(t *testing.T) {
	bin := filepath.Join(binaries(t), "mediagw-demo")
	r := runDemoBinary(t, bin, nil, "--example", "fax-in", "--dir", t.TempDir())
	for _, want := range []string{"the fax line is SIMULATED", `mailed  to sales@demo.example: "Fax from +1 555 0100 ACME, 2 pages"`,
		`"Fax from LAB NORTH, 1 page (incomplete)"`, "fax-demo-call-1.pdf", "fax-demo-call-1.tiff", "filed   demo-call-3 (to 999, 1 page(s), route default)",
		"All 3 simulated faxes delivered"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if r.code != 0 || t.Failed() {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestDemoAlarmMaildirExample: the Maildir alarm demo ends with both alarms
// acknowledged by a DC-09 receiver (one by the backup) and the unknown code
// rejected.
func TestDemoAlarmMaildirExample(t *testing.T) {
	bin := filepath.Join(binaries(t), "mediagw-demo")
	r := runDemoBinary(t, bin, nil, "--example", "alarm-maildir", "--dir", t.TempDir())
	if r.code != 0 || !strings.Contains(r.stdout, "2 signals acknowledged (1 by the backup after the primary hung up), 1 rejected") ||
		!strings.Contains(r.stdout, "[#123588|1130 01 001], decrypted") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestDemoAlarmIMAP: the alarm demos over IMAP IDLE, the o365 plugin and
// each alarm driver: every signal is narrated as acknowledged with its
// account, event, zone (and DC-09 sequence), the unknown event code is
// rejected with its reason, and the exit code is 0.
func TestDemoAlarmIMAP(t *testing.T) {
	bin := filepath.Join(binaries(t), "mediagw-demo")
	for _, tc := range []struct {
		example string
		want    []string
	}{
		{"alarm", []string{
			"mailbox: IDLE: the connector waits for new mail",
			"receiver: ACK account 123588, event 1130, zone 001, partition 01, sequence 0001  [#123588|1130 01 001]",
			"receiver: ACK account 204711, event 1110, zone 012, partition 02, sequence 0002  [#204711|1110 02 012]",
		}},
		{"alarm-surgard", []string{
			"on the far end of the serial line /dev/pts/",
			"receiver: ACK account 123588, event BA, zone 001, partition 1  [S01001[#123588|Nri1/BA001]]",
			"receiver: ACK account 204711, event FA, zone 012, partition 2  [S01001[#204711|Nri2/FA012]]",
		}},
	} {
		t.Run(tc.example, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "demo")
			// Under the connector's 1-minute poll: a mail IDLE missed fails.
			r := runDemoBinary(t, bin, nil, "--example", tc.example, "--dir", dir, "--timeout", "30s")
			if r.code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			want := append(tc.want,
				"mailbox: XOAUTH2 login as alarms@centre.example: token verified",
				`gateway: REJECTED imap:1:3: event: not one of the allowed values`,
				`mailbox: MOVE uid 3 to "mediagw-failed"`,
				"OK: 2 signals acknowledged, 1 mail rejected with its reason")
			for _, w := range want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s", r.stdout)
			}
		})
	}
}

// TestDemoAlarmIMAPFailsInTime: a demo that does not get through in time
// exits 1, says where it stopped, and does not claim success.
func TestDemoAlarmIMAPFailsInTime(t *testing.T) {
	bin := filepath.Join(binaries(t), "mediagw-demo")
	// 1 ms is too short for the connector to log in.
	r := runDemoBinary(t, bin, nil, "--example", "alarm", "--dir", t.TempDir(), "--timeout", "1ms")
	if r.code != 1 || !strings.Contains(r.stderr, "demo failed: demo: the connector never reached IDLE within 1ms") || strings.Contains(r.stdout, "OK:") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestDemoHAExample: two gateways on a throwaway PostgreSQL; the owner of
// the mailbox is killed and the other takes it over within takeover_after;
// every mail is settled.
func TestDemoHAExample(t *testing.T) {
	bin := filepath.Join(binaries(t), "mediagw-demo")
	r := runDemoBinary(t, bin, nil, "--example", "ha", "--dir", t.TempDir())
	if r.code != 0 && strings.Contains(r.stderr, "apt-get install postgresql") {
		testenv.Skip(t, "PostgreSQL is not installed (Debian package postgresql)")
	}
	m := regexp.MustCompile(`TAKEOVER: gateway b owns the mailbox ([0-9.]+) s after gateway a died`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || !strings.Contains(r.stdout, "all 6 mails settled") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if s, _ := strconv.ParseFloat(m[1], 64); s > 4.5 {
		t.Errorf("takeover after %s s, takeover_after is 3 s", m[1])
	}
}

// TestDemoHAWithoutPostgres: without PostgreSQL the ha example says how to
// install it and fails.
func TestDemoHAWithoutPostgres(t *testing.T) {
	bin := filepath.Join(binaries(t), "mediagw-demo")
	r := runDemoBinary(t, bin, append(os.Environ(), "MEDIAGW_PG_BINDIR="+t.TempDir()), "--example", "ha", "--dir", t.TempDir())
	if r.code == 0 || !strings.Contains(r.stderr, "apt-get install postgresql") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}
