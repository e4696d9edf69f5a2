package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestKeyLine(t *testing.T) {
	var doc yaml.Node
	src := "path: x\nimap:\n  host: h\n  port: 993\nfolders:\n  - INBOX\n  - Sent\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	n := doc.Content[0]
	for _, tc := range []struct {
		path string
		want int
	}{
		{"", 1}, {"path", 1}, {"imap", 2}, {"imap.port", 4}, {"imap.user", 2}, {"folders.1", 7}, {"colour", 1},
	} {
		if got := KeyLine(n, tc.path); got != tc.want {
			t.Errorf("KeyLine(%q) = %d, want %d", tc.path, got, tc.want)
		}
	}
}

// TestParseProblems: a mistake in the file is an error naming file:line,
// never a crash, and every problem is reported at once.
func TestParseProblems(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "mediagw.yaml")
	cases := []struct {
		name string
		src  string
		want []string
		not  []string // must not be in the error
	}{
		{"connector and driver with nothing under them",
			"connectors:\n  inbox:\ndrivers:\n  fax:\n",
			[]string{cfgFile + ":4: driver fax: type is missing", cfgFile + ":2: connector inbox: map is missing", cfgFile + ":2: connector inbox: plugin is missing"}, nil},
		{"no connectors", "log:\n  level: info\n", []string{"no connectors"}, nil},
		{"unknown key", "connectors:\n  inbox:\n    plugn: x\n",
			[]string{cfgFile + `:3: connectors.inbox: unknown key "plugn" (valid keys: checksum, config, map, max_in_flight, plugin, routes)`}, nil},
		{"misspelt log level", "connectors:\n  inbox:\n    plugin: x\nlog:\n  format: text\n  levle: debug\n",
			[]string{cfgFile + `:6: log: unknown key "levle" (valid keys: format, level)`}, nil},
		{"unknown keys everywhere, each at its line", "spool:\n  dir: s\n  forget: 1h\nconector:\n  x: 1\ndrivers:\n  fax:\n    type: faxmodem\n    option: {}\n",
			[]string{
				cfgFile + `:3: spool: unknown key "forget" (valid keys: `, " dir, ", " forget_after, ", " takeover_after, ", " tls)",
				cfgFile + `:4: top level: unknown key "conector" (valid keys: connectors, drivers, gateway, inbound, log, maps, spool, status)`,
				cfgFile + `:9: drivers.fax: unknown key "option" (valid keys: gateways, max_attempts, options, type)`,
			}, nil},
		{"takeover too short", "spool:\n  takeover_after: 200ms\nconnectors:\n  inbox:\n    plugin: x\n",
			[]string{cfgFile + ":2: spool.takeover_after 200ms: want at least 1s"}, nil},
		{"unknown key and wrong type together", "log:\n  levle: debug\nconnectors:\n  inbox:\n    max_in_flight: many\n",
			[]string{cfgFile + `:2: log: unknown key "levle"`, cfgFile + ":5: cannot unmarshal"}, nil},
		{"plugin config and driver options are left to their owners", "connectors:\n  inbox:\n    config: {anything: 1}\ndrivers:\n  fax:\n    type: file\n    options: {whatever: 2}\n",
			[]string{"connector inbox: map is missing"}, []string{"unknown key"}},
		{"bad level and route", "log:\n  level: loud\nconnectors:\n  inbox:\n    routes: [pager]\n",
			[]string{cfgFile + ":2: log.level \"loud\"", `route "pager" is not defined under drivers:`}, nil},
		{"bad duration", "spool:\n  forget_after: two weeks\n", []string{cfgFile + `:2: "two weeks" is not a duration`}, nil},
		{"bad size", "spool:\n  compact:\n    min_size: 64 megs\n", []string{cfgFile + `:3: "64 megs" is not a size`}, nil},
		{"unknown backend", "spool:\n  backend: mysql\n", []string{cfgFile + `:2: spool.backend "mysql": want bbolt or postgres`}, nil},
		{"postgres without a dsn", "spool:\n  backend: postgres\n", []string{cfgFile + `:2: spool.dsn is missing`}, nil},
		{"dsn from an unset variable", "spool:\n  backend: postgres\n  dsn: env:MEDIAGW_TEST_UNSET_DSN\n",
			[]string{cfgFile + `:3: secret: environment variable MEDIAGW_TEST_UNSET_DSN is not set`}, nil},
		{"unknown tls key", "spool:\n  backend: postgres\n  tls:\n    ca: x\n",
			[]string{cfgFile + `:4: spool.tls: unknown key "ca" (valid keys: ca_file, cert_file, key_file, server_name)`}, nil},
		{"bad migrate, half a client certificate", "spool:\n  backend: postgres\n  dsn: postgres://gw:s3cret@db/mediagw\n  migrate: sometimes\n  tls:\n    cert_file: c.pem\n",
			[]string{cfgFile + `:4: spool.migrate "sometimes": want auto or manual`, cfgFile + `:5: spool.tls: cert_file and key_file go together`},
			[]string{"s3cret"}},
		{"a driver named like the gateway's own", "inbound:\n  default: {folder: f}\ndrivers:\n  mail:x:\n    type: file\n",
			[]string{cfgFile + `:4: driver mail:x: a name must not contain ":"`}, []string{"no connectors"}},
		{"an inbound route without a target, no connectors needed", "inbound:\n  routes:\n    - name: a\n      match: {called: ['1']}\n",
			[]string{cfgFile + `:3: inbound route a: no target`}, []string{"no connectors"}},
		{"inbound routes named like the default route and the unrouted folder",
			"inbound:\n  routes:\n    - name: default\n      folder: a\n    - name: unrouted\n      folder: b\n  default: {folder: c}\n",
			[]string{cfgFile + `:3: inbound route "default": the name is reserved`, cfgFile + `:5: inbound route "unrouted": the name is reserved`}, nil},
		{"postgres keys on a bbolt spool", "spool:\n  dir: s\n  dsn: postgres://db/x\n", []string{cfgFile + `:3: spool.dsn is for backend: postgres`}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(cfgFile, []byte(tc.src))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %v, want a *config.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error has %q:\n%s", w, err)
				}
			}
		})
	}
}

// A gateway that only receives faxes into folders needs no connector.
func TestReceiveOnly(t *testing.T) {
	c, err := Parse(filepath.Join(t.TempDir(), "mediagw.yaml"), []byte("inbound:\n  default:\n    folder: faxes\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.HasInbound() || c.Inbound.Default.Folder != "faxes" {
		t.Errorf("inbound %+v", c.Inbound)
	}
}

// spool.failed_retention defaults to 30 days; the file may set it.
func TestFailedRetention(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want time.Duration
	}{
		{"dir: var/spool\n", 30 * 24 * time.Hour},
		{"failed_retention: 168h\n", 7 * 24 * time.Hour},
	} {
		sp := Defaults.Spool
		if err := yaml.Unmarshal([]byte(tc.src), &sp); err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if got := time.Duration(sp.FailedRetention); got != tc.want {
			t.Errorf("%q: failed_retention %v, want %v", tc.src, got, tc.want)
		}
	}
}

// TestStatusSecurity: the status listener leaves loopback only with a way to
// sign in and with encryption; users and the token file are checked.
func TestStatusSecurity(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "mediagw.yaml")
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("token", "0123456789abcdef0123\n")
	write("short", "abc\n")
	write("cert.pem", "x")
	write("key.pem", "x")
	const hash = "$2a$04$JqfOmEHl3MgmYt/0bX6p6.G2W5Y8I0B1qs0n5fPmeRzOiCCvULtKm" // bcrypt form, cost 4
	const base = "spool:\n  dir: s\n"
	user := "  users:\n    - name: ann\n      password_hash: \"" + hash + "\"\n      role: operator\n"
	for _, tc := range []struct {
		name, status string
		want         []string // empty: valid
	}{
		{"loopback needs nothing", "  listen: 127.0.0.1:8025\n", nil},
		{"localhost needs nothing", "  listen: localhost:8025\n", nil},
		{"ipv6 loopback", "  listen: \"[::1]:8025\"\n", nil},
		{"all interfaces without users or tls", "  listen: \":8025\"\n",
			[]string{"is not loopback: give status.users or status.token_file", "give status.tls_cert and status.tls_key, or set status.behind_proxy"}},
		{"users behind a proxy", "  listen: 0.0.0.0:8025\n  behind_proxy: true\n" + user, nil},
		{"token with tls", "  listen: 10.0.0.5:8443\n  token_file: token\n  tls_cert: cert.pem\n  tls_key: key.pem\n", nil},
		{"users without tls", "  listen: 10.0.0.5:8025\n" + user, []string{"give status.tls_cert and status.tls_key"}},
		{"cert without key", "  tls_cert: cert.pem\n", []string{"tls_cert and tls_key go together"}},
		{"short token", "  token_file: short\n", []string{"token is shorter than 16 characters"}},
		{"missing token file", "  token_file: nope\n", []string{"status.token_file:"}},
		{"plain-text password", "  users:\n    - name: bob\n      password_hash: hunter2hunter2\n      role: viewer\n",
			[]string{"status.users[0] (bob): password_hash: passwd: not a bcrypt or argon2id hash"}},
		{"bad role", "  users:\n    - name: bob\n      password_hash: \"" + hash + "\"\n      role: admin\n", []string{`role "admin": want viewer or operator`}},
		{"unknown key", "  listen: 127.0.0.1:8025\n  passwrd: x\n", []string{`:5: status: unknown key "passwrd" (valid keys: behind_proxy, listen, `}},
		{"bad listen", "  listen: 8025\n", []string{`status.listen "8025": want host:port`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := base + "status:\n" + tc.status + "connectors:\n  inbox:\n"
			_, err := Parse(cfgFile, []byte(src))
			var problems []string
			var ce *Error
			if errors.As(err, &ce) {
				for _, p := range ce.Problems {
					if strings.Contains(p, "status") || strings.Contains(p, "passwrd") {
						problems = append(problems, p)
					}
				}
			}
			if len(tc.want) == 0 && len(problems) > 0 {
				t.Fatalf("unexpected problems: %q", problems)
			}
			joined := strings.Join(problems, "\n")
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Errorf("problems lack %q:\n%s", w, joined)
				}
			}
			if strings.Contains(joined, hash) || strings.Contains(joined, "hunter2") {
				t.Errorf("a problem repeats the password hash:\n%s", joined)
			}
		})
	}
}

func TestSpoolCompactSettings(t *testing.T) {
	for _, tc := range []struct {
		src     string
		auto    bool
		minSize ByteSize
	}{
		{"", true, 64 << 20},
		{"spool:\n  compact:\n    auto: false\n", false, 64 << 20},
		{"spool:\n  compact:\n    min_size: 512KiB\n", true, 512 << 10},
		{"spool:\n  compact:\n    min_size: 1GiB\n", true, 1 << 30},
		{"spool:\n  compact:\n    min_size: 100MB\n", true, 100e6},
		{"spool:\n  compact:\n    min_size: 4096\n", true, 4096},
	} {
		var cfg Config
		cfg.Spool = Defaults.Spool
		if err := yaml.Unmarshal([]byte(tc.src), &cfg); err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if cfg.Spool.Compact.Auto != tc.auto || cfg.Spool.Compact.MinSize != tc.minSize {
			t.Errorf("%q: compact = %+v, want auto %v, min_size %d", tc.src, cfg.Spool.Compact, tc.auto, tc.minSize)
		}
	}
}

// backend: postgres with the DSN from the environment: the DSN is read,
// and printing the config shows no password.
func TestSpoolPostgres(t *testing.T) {
	t.Setenv("MEDIAGW_TEST_DSN", "postgres://gw:s3cret@db.example/mediagw")
	var cfg Config
	cfg.Spool = Defaults.Spool
	src := "spool:\n  backend: postgres\n  dsn: env:MEDIAGW_TEST_DSN\n  tls:\n    server_name: db.example\n"
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	sp := cfg.Spool
	if sp.Backend != BackendPostgres || sp.DSN.Reveal() != "postgres://gw:s3cret@db.example/mediagw" || sp.Migrate != "auto" || sp.TLS.ServerName != "db.example" {
		t.Fatalf("spool = %+v", sp)
	}
	if s := fmt.Sprintf("%v %+v", cfg, cfg); strings.Contains(s, "s3cret") {
		t.Fatalf("the config prints the DSN's password: %s", s)
	}
	if Defaults.Spool.Backend != BackendBolt {
		t.Fatalf("default backend = %q, want bbolt", Defaults.Spool.Backend)
	}
}

// TestGatewayAndPlacement: the gateway's name defaults to the host name,
// takeover_after to 15 s, and a driver runs on the gateways it names (all
// when it names none).
func TestGatewayAndPlacement(t *testing.T) {
	dir := t.TempDir()
	file, mapFile := filepath.Join(dir, "mediagw.yaml"), filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(mapFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, src string
		gateway   string
		takeover  time.Duration
		runsOn    map[string]string // driver → the gateways it runs on, of a, b
	}{
		{"defaults", "drivers:\n  f:\n    type: file\n", host, 15 * time.Second, map[string]string{"f": "ab"}},
		{"placed", "gateway: a\nspool:\n  takeover_after: 5s\ndrivers:\n  ma:\n    type: file\n    gateways: [a]\n  mb:\n    type: file\n    gateways: [b]\n  f:\n    type: file\n",
			"a", 5 * time.Second, map[string]string{"ma": "a", "mb": "b", "f": "ab"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(file, []byte(tc.src+"connectors:\n  in:\n    plugin: /bin/true\n    map: m\nmaps:\n  m: "+mapFile+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Gateway != tc.gateway || time.Duration(cfg.Spool.TakeoverAfter) != tc.takeover {
				t.Fatalf("gateway %q, takeover_after %v", cfg.Gateway, time.Duration(cfg.Spool.TakeoverAfter))
			}
			for d, on := range tc.runsOn {
				for _, gw := range []string{"a", "b"} {
					if got, want := cfg.Drivers[d].RunsOn(gw), strings.Contains(on, gw); got != want {
						t.Errorf("driver %s runs on %s: %v, want %v", d, gw, got, want)
					}
				}
			}
		})
	}
}
