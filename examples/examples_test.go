package examples_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/datamap"
	"github.com/mediagw/mediagw/examples"
	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem"
	"github.com/mediagw/mediagw/plugin/o365"
)

// binaries builds what a user runs: mediagw and the connector plugins beside it.
func binaries(t testing.TB) string {
	t.Helper()
	return testenv.Binaries(t, "github.com/mediagw/mediagw/cmd/mediagw",
		"github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir",
		"github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
}

func TestMain(m *testing.M) { testenv.RunMain(m) }

// placeholderSecret stands in for the client secret of o365-to-fax.yaml,
// which reads it from the environment (env:O365_CLIENT_SECRET).
const placeholderSecret = "placeholder-secret-value"

// configs lists examples/*.yaml.
func configs(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"maildir-to-file.yaml", "o365-to-fax.yaml", "alarm-email-to-file.yaml", "alarm-email-to-dc09.yaml", "alarm-email-to-surgard.yaml", "maildir-to-fax.yaml"} {
		if !slices.Contains(names, want) {
			t.Errorf("example %s is missing", want)
		}
	}
	return names
}

// install copies the example configs and maps into a fresh folder, as a
// user would, so that what validation and runs create (var/) stays out of
// the source tree.
func install(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == "." || p == "maps" {
				return nil
			}
			return fs.SkipDir
		}
		if !strings.HasSuffix(p, ".yaml") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// mediagw runs the built binary and returns its exit code and output.
func mediagw(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "mediagw"), args...)
	// The test's own O365_CLIENT_SECRET (if any) does not leak into the child.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "O365_CLIENT_SECRET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	}
	t.Fatalf("mediagw %s: %v", strings.Join(args, " "), err)
	return -1, ""
}

// TestValidate runs `mediagw validate` on every example, as CI and a user
// do: keys, maps, drivers, and each connector plugin's own check of its
// settings. The o365 example validates without a tenant: the plugin checks
// its settings but does not connect.
func TestValidate(t *testing.T) {
	dir := install(t)
	for _, name := range configs(t) {
		t.Run(name, func(t *testing.T) {
			code, out := mediagw(t, []string{"O365_CLIENT_SECRET=" + placeholderSecret}, "validate", "-c", filepath.Join(dir, name))
			if code != 0 || !strings.Contains(out, name+": ok (") {
				t.Fatalf("mediagw validate -c %s: exit %d\n%s", name, code, out)
			}
		})
	}
}

// lineOf is the 1-based line of the first line of file containing s.
func lineOf(t *testing.T, file, s string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%s: no line contains %q", file, s)
	return 0
}

// TestValidateNamesTheMistake shows that validating an example is not a
// formality: a mistake an operator makes when adapting it is reported with
// the file and line.
func TestValidateNamesTheMistake(t *testing.T) {
	cases := []struct {
		name, file  string
		from, to    string // an edit of the example
		env         []string
		line        string // the line the message must point at
		want        string
		noPlacehold bool
	}{
		{name: "secret env unset", file: "o365-to-fax.yaml", noPlacehold: true,
			line: "client_secret: env:O365_CLIENT_SECRET", want: "connector fax-mailbox: config.client_secret: secret: environment variable O365_CLIENT_SECRET is not set"},
		{name: "o365 key misspelt", file: "o365-to-fax.yaml", from: "      tenant_id:", to: "      tenantid:",
			line: "tenantid:", want: "connector fax-mailbox: config.tenantid: unknown key"},
		{name: "o365 bad after_processing", file: "o365-to-fax.yaml", from: "after_processing: move:Faxed", to: "after_processing: archive",
			line: "after_processing: archive", want: `config.after_processing: want seen, delete or move:<folder>, got "archive"`},
		{name: "maildir key misspelt", file: "alarm-email-to-file.yaml", from: "      failed: var/alarm-failed", to: "      failed_folder: var/alarm-failed",
			line: "failed_folder:", want: "connector alarms: config.failed_folder"},
		{name: "fax class", file: "maildir-to-fax.yaml", from: `init: ["+FLO=1"]              # XON/XOFF flow control (T.31); &K4 on some modems`, to: `class: "3"`,
			line: "  fax:", want: `devices[0]: class "3" (want auto, 1, 1.0, 2 or 2.0)`},
		{name: "outside line as a list, as before", file: "maildir-to-fax.yaml", from: `outside_line: "9"               # the PBX's code`, to: `outside_line: ["9"]               # the PBX's code`,
			line: "  fax:", want: `dial.outside_line is one code now, not a list (outside_line: "9")`},
		{name: "dial_prefix, as before", file: "maildir-to-fax.yaml", from: `init: ["+FLO=1"]              # XON/XOFF flow control (T.31); &K4 on some modems`, to: `dial_prefix: "T9,"`,
			line: `dial_prefix: "T9,"`, want: `devices.0.dial_prefix: dial_prefix was removed: the outside-line code goes in the driver's dial.outside_line, the modem's dial modifiers (T, P, W, ',') in dial_modifiers`},
		{name: "premium list, as before", file: "maildir-to-fax.yaml", from: `        region: US                      # the line is in the US`, to: `        premium: ["900*"]
        region: US                      # the line is in the US`,
			line: `premium: ["900*"]`, want: `dial.premium: dial.premium was removed: number types come from the numbering plan now`},
		{name: "route to a missing driver", file: "alarm-email-to-file.yaml", from: "  alarm-backup:", to: "  alarm-spare:",
			line: "alarms:", want: `map alarm routes to driver "alarm-backup", which is not defined under drivers:`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := install(t)
			file := filepath.Join(dir, tc.file)
			if tc.from != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(b, []byte(tc.from)) {
					t.Fatalf("%s does not contain %q", tc.file, tc.from)
				}
				if err := os.WriteFile(file, bytes.Replace(b, []byte(tc.from), []byte(tc.to), 1), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := []string{"O365_CLIENT_SECRET=" + placeholderSecret}
			if tc.noPlacehold {
				env = nil
			}
			code, out := mediagw(t, env, "validate", "-c", file)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, out)
			}
			at := fmt.Sprintf("%s:%d: ", file, lineOf(t, file, tc.line))
			if !strings.Contains(out, at) || !strings.Contains(out, tc.want) {
				t.Fatalf("output does not say %q at %q:\n%s", tc.want, at, out)
			}
		})
	}
}

// sample is a mail and what the example's map and drivers must make of it.
type sample struct {
	config, connector, mail string
	fields                  map[string]string
	docs                    []string // "name media type"
	routes                  []string
	reject                  string            // the data map's rejection, when one is expected
	refuse                  map[string]string // driver → what its Check says, for drivers that refuse the record
}

var samples = []sample{
	{config: "maildir-to-file.yaml", connector: "inbox", mail: "mail/01-order.eml",
		fields: map[string]string{"sender": "alice@example.com", "subject": "Order confirmation Ref: A-1001", "reference": "A-1001"},
		docs:   []string{"body.txt text/plain; charset=utf-8"}, routes: []string{"archive"}},
	{config: "maildir-to-file.yaml", connector: "inbox", mail: "mail/02-report.eml",
		fields: map[string]string{"sender": "bob@example.org", "subject": "Monatsbericht für November", "reference": "NOV-2026"},
		docs:   []string{"body.txt text/plain; charset=utf-8", "summary.txt text/plain"}, routes: []string{"archive"}},
	{config: "maildir-to-file.yaml", connector: "inbox", mail: "mail/03-no-sender.eml", reject: "sender: no match in From"},

	{config: "alarm-email-to-file.yaml", connector: "alarms", mail: "samples/alarm-burglary.eml",
		fields: map[string]string{"txid": "123588", "event": "BA", "event_name": "burglary alarm", "zone": "1", "area": "1",
			"site": "Warehouse 4, Dock Road", "priority": "normal"},
		routes: []string{"alarm-primary"}},
	{config: "alarm-email-to-file.yaml", connector: "alarms", mail: "samples/alarm-fire-html.eml",
		fields: map[string]string{"txid": "204711", "event": "FA", "event_name": "fire alarm", "zone": "12", "area": "2",
			"site": "", "priority": "high"},
		routes: []string{"alarm-primary", "alarm-backup"}},
	{config: "alarm-email-to-file.yaml", connector: "alarms", mail: "samples/alarm-unknown-code.eml",
		reject: `event: not one of the allowed values`},

	{config: "alarm-email-to-dc09.yaml", connector: "alarms", mail: "samples/alarm-burglary.eml",
		fields: map[string]string{"alarm_account": "123588", "alarm_event": "BA", "alarm_zone": "1", "alarm_partition": "1",
			"alarm_text": "Warehouse 4, Dock Road"},
		routes: []string{"alarm-primary"}},
	{config: "alarm-email-to-dc09.yaml", connector: "alarms", mail: "samples/alarm-fire-html.eml",
		fields: map[string]string{"alarm_account": "204711", "alarm_event": "FA", "alarm_zone": "12", "alarm_partition": "2",
			"alarm_text": "fire alarm"},
		routes: []string{"alarm-primary", "alarm-backup"}},
	{config: "alarm-email-to-dc09.yaml", connector: "alarms", mail: "samples/alarm-unknown-code.eml",
		reject: `event: not one of the allowed values`},

	{config: "alarm-email-to-surgard.yaml", connector: "alarms", mail: "samples/alarm-burglary.eml",
		fields: map[string]string{"alarm_account": "123588", "alarm_event": "BA"}, routes: []string{"alarm-primary"}},
	{config: "alarm-email-to-surgard.yaml", connector: "alarms", mail: "samples/alarm-fire-html.eml",
		fields: map[string]string{"alarm_account": "204711", "alarm_event": "FA"}, routes: []string{"alarm-primary", "alarm-backup"}},

	{config: "maildir-to-fax.yaml", connector: "inbox", mail: "samples/fax-pdf.eml",
		fields: map[string]string{"fax_number": "+12015550142", "recipient": "Accounts Payable", "sender": "carol@contoso.example", "subject": "Invoice 2026-117"},
		docs:   []string{"invoice-2026-117.pdf application/pdf"}, routes: []string{"fax"}},
	{config: "maildir-to-fax.yaml", connector: "inbox", mail: "samples/fax-international-text.eml",
		fields: map[string]string{"fax_number": "+442079460018", "fax_number_as_written": "+44 20 7946 0018", "recipient": "London office", "sender": "dave@contoso.example"},
		docs:   []string{"cover.txt text/plain; charset=utf-8"}, routes: []string{"fax-international"},
		// the domestic line would refuse it too, had the map sent it there
		refuse: map[string]string{"fax": "is international"}},
	{config: "maildir-to-fax.yaml", connector: "inbox", mail: "samples/fax-premium.eml",
		fields: map[string]string{"fax_number": "+19005550123", "fax_number_as_written": "1-900-555-0123"},
		docs:   []string{"cover.txt text/plain; charset=utf-8"}, routes: []string{"fax"},
		refuse: map[string]string{"fax": "+19005550123 is a premium-rate number", "fax-international": "+19005550123 is a premium-rate number"}},

	{config: "o365-to-fax.yaml", connector: "fax-mailbox", mail: "samples/fax-pdf.eml",
		fields: map[string]string{"fax_number": "+12015550142", "recipient": "Accounts Payable"},
		docs:   []string{"invoice-2026-117.pdf application/pdf"}, routes: []string{"fax"}},
	{config: "o365-to-fax.yaml", connector: "fax-mailbox", mail: "samples/fax-premium.eml",
		fields: map[string]string{"fax_number": "+19005550123"}, routes: []string{"fax"},
		docs:   []string{"cover.txt text/plain; charset=utf-8"},
		refuse: map[string]string{"fax": "is a premium-rate number"}},
}

// plans loads each example the way the gateway does (config.Load, then
// host.Prepare: maps compiled, drivers constructed) without starting it.
func plans(t *testing.T) map[string]*host.Plan {
	t.Helper()
	dir := install(t)
	// config.Load finds plugin binaries beside mediagw or in PATH.
	t.Setenv("PATH", binaries(t)+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("O365_CLIENT_SECRET", placeholderSecret)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	out := map[string]*host.Plan{}
	for _, name := range configs(t) {
		cfg, err := config.Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p, err := host.Prepare(cfg, log)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(p.Close)
		out[name] = p
	}
	return out
}

// TestSamples feeds sample mails through each example's data map and asks
// each routed driver whether it takes the record, as the pipeline does
// before a job is spooled.
func TestSamples(t *testing.T) {
	ps := plans(t)
	covered := map[string]bool{}
	for _, s := range samples {
		covered[s.config] = true
		t.Run(s.config+"/"+filepath.Base(s.mail), func(t *testing.T) {
			p := ps[s.config]
			if p == nil {
				t.Fatalf("no example %s", s.config)
			}
			cn := p.Config.Connectors[s.connector]
			if cn == nil {
				t.Fatalf("%s has no connector %s", s.config, s.connector)
			}
			raw, err := os.ReadFile(s.mail)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Maps[cn.Map].Apply(raw)
			if s.reject != "" {
				var rej *datamap.Rejection
				if !errors.As(err, &rej) || !strings.Contains(rej.Error(), s.reject) {
					t.Fatalf("Apply: %v, want a rejection saying %q", err, s.reject)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			for k, v := range s.fields {
				if got := res.Value(k); got != v {
					t.Errorf("field %s = %q, want %q", k, got, v)
				}
			}
			var docs []string
			rec := &linedriver.Record{ID: "r1", Connector: s.connector, Fields: res.Values()}
			for _, d := range res.Documents {
				docs = append(docs, d.Name+" "+d.MediaType)
				rec.Documents = append(rec.Documents, linedriver.Document{Name: d.Name, MediaType: d.MediaType, Data: d.Data})
			}
			if !slices.Equal(docs, s.docs) {
				t.Errorf("documents = %q, want %q", docs, s.docs)
			}
			if !slices.Equal(res.Routes, s.routes) {
				t.Fatalf("routes = %q, want %q", res.Routes, s.routes)
			}
			for _, d := range s.routes {
				if _, refused := s.refuse[d]; refused {
					continue
				}
				drv := p.Drivers[d]
				if drv == nil {
					t.Fatalf("route %s: no such driver in %s", d, s.config)
				}
				if err := drv.Check(rec); err != nil {
					t.Errorf("driver %s refuses the record: %v", d, err)
				}
			}
			for d, want := range s.refuse {
				err := p.Drivers[d].Check(rec)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("driver %s: Check = %v, want a refusal saying %q", d, err, want)
				}
				if err != nil && strings.HasPrefix(p.Config.Drivers[d].Type, "faxmodem") && !errors.Is(err, faxmodem.ErrDenied) {
					t.Errorf("driver %s: Check = %v, want faxmodem.ErrDenied", d, err)
				}
			}
		})
	}
	for _, name := range configs(t) {
		if !covered[name] {
			t.Errorf("example %s has no sample mails in this test", name)
		}
	}
}

// TestEmbedded checks that the embedded examples are the files in this
// folder (the demo unpacks them).
func TestEmbedded(t *testing.T) {
	err := fs.WalkDir(examples.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		emb, _ := examples.FS.ReadFile(p)
		disk, err := os.ReadFile(filepath.FromSlash(p))
		if err != nil {
			return err
		}
		if !bytes.Equal(emb, disk) {
			return fmt.Errorf("%s: embedded copy differs", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var commentedKey = regexp.MustCompile(`^\s*(- )?#?\s*[a-z_]+:.*#`)

// TestO365ExampleCommented: every setting of the o365 connector (from the
// plugin's own schema) and every option of the faxmodem driver is in
// o365-to-fax.yaml, set or commented out, with a comment saying what it is.
func TestO365ExampleCommented(t *testing.T) {
	b, err := os.ReadFile("o365-to-fax.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var keys []string
	schema, err := o365.New(slog.New(slog.NewTextHandler(io.Discard, nil))).ConfigSchema(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range schema {
		keys = append(keys, f.Name)
	}
	if len(keys) < 20 {
		t.Fatalf("the o365 schema has %d keys", len(keys))
	}
	for _, k := range keys {
		found := false
		for _, l := range lines {
			if strings.Contains(l, " "+k+":") && commentedKey.MatchString(l) {
				found = true
			}
		}
		if !found {
			t.Errorf("o365-to-fax.yaml: o365 setting %s is missing or has no comment", k)
		}
	}
	for _, v := range []any{faxmodem.Options{}, faxmodem.DeviceConfig{}, faxmodem.RetryPolicy{}, faxmodem.DialPlan{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			if !strings.Contains(string(b), " "+tag+":") && !strings.Contains(string(b), "{"+tag+":") {
				t.Errorf("o365-to-fax.yaml: faxmodem option %s (%s) is missing", tag, typ.Name())
			}
		}
	}
}
