package inbound

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/host/config"
)

// load parses a config the way the gateway does and compiles its routes.
func load(t *testing.T, yaml string) (*Router, string, error) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "connector"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "m.yaml"), []byte("fields: []\n"), 0o644)
	file := filepath.Join(dir, "mediagw.yaml")
	os.WriteFile(file, []byte(yaml), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		return nil, file, err
	}
	r, err := Compile(cfg, filepath.Join(dir, "spool", UnroutedName))
	return r, file, err
}

const routesYAML = `inbound:
  timezone: Europe/Berlin
  routes:
    - name: sales
      match:
        called: ["1001", "+1 (555) 123-1001"]
      folder: faxes/sales
    - name: acme
      match:
        remote_id: ["*acme*"]
      folder: faxes/acme
    - name: night
      match:
        days: [mon-fri]
        hours: ["18:00-08:00"]
      folder: faxes/night
    - name: weekend
      match:
        days: [sat-sun]
      folder: faxes/weekend
    - name: lab
      match:
        caller: ["+1555019?"]
        called: ["2*"]
      folder: faxes/lab
  default:
    folder: faxes/other
`

func TestRoute(t *testing.T) {
	r, _, err := load(t, routesYAML)
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tue := func(h, m int) time.Time { return time.Date(2026, 3, 3, h, m, 0, 0, berlin) } // a Tuesday
	for _, tc := range []struct {
		name string
		f    Facts
		want string
	}{
		{"the DID of sales", Facts{CalledNumber: "1001", Time: tue(10, 0)}, "sales"},
		{"the DID as the line writes it in full", Facts{CalledNumber: "+15551231001", Time: tue(10, 0)}, "sales"},
		{"first match wins: sales before acme", Facts{CalledNumber: "1001", RemoteID: "ACME Corp", Time: tue(10, 0)}, "sales"},
		{"station id, without regard to case", Facts{RemoteID: " +49 30 1234 Acme ", Time: tue(10, 0)}, "acme"},
		{"a weekday evening", Facts{Time: tue(18, 0)}, "night"},
		{"a weekday early morning (the window crosses midnight)", Facts{Time: tue(7, 59)}, "night"},
		{"the end of the window is not in it", Facts{Time: tue(8, 0)}, "default"},
		{"the window's hours are Berlin's, not UTC's", Facts{Time: time.Date(2026, 3, 3, 17, 30, 0, 0, time.UTC)}, "night"},
		{"a Saturday", Facts{Time: time.Date(2026, 3, 7, 12, 0, 0, 0, berlin)}, "weekend"},
		{"Friday's night after midnight is Saturday's", Facts{Time: time.Date(2026, 3, 7, 3, 0, 0, 0, berlin)}, "weekend"},
		{"Monday before 08:00 is Monday's", Facts{Time: time.Date(2026, 3, 2, 3, 0, 0, 0, berlin)}, "night"},
		{"both criteria of lab", Facts{CallerNumber: "+1 555 0199", CalledNumber: "2002", Time: tue(10, 0)}, "lab"},
		{"one criterion of lab only", Facts{CallerNumber: "+1 555 0199", CalledNumber: "3003", Time: tue(10, 0)}, "default"},
		{"a criterion the line did not report does not match", Facts{CallerNumber: "+1 555 0199", Time: tue(10, 0)}, "default"},
		{"nothing matches: the default", Facts{CalledNumber: "9999", Time: tue(12, 0)}, "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Route(&tc.f).Name; got != tc.want {
				t.Errorf("route %s, want %s", got, tc.want)
			}
		})
	}
	if rt := r.Route(&Facts{CalledNumber: "1001", Time: tue(10, 0)}); len(rt.Targets) != 1 || rt.Targets[0].Driver != "folder:sales" ||
		!strings.HasSuffix(rt.Targets[0].Folder, filepath.Join("faxes", "sales")) || !filepath.IsAbs(rt.Targets[0].Folder) {
		t.Errorf("sales targets %+v, want the folder faxes/sales beside the config", rt.Targets)
	}
}

func TestRouteWithoutDefault(t *testing.T) {
	r, _, err := load(t, "inbound:\n  routes:\n    - match: {called: ['1001']}\n      folder: faxes\n")
	if err != nil {
		t.Fatal(err)
	}
	rt := r.Route(&Facts{CalledNumber: "2002", Time: time.Now()})
	if rt.Name != UnroutedName || len(rt.Targets) != 1 || filepath.Base(rt.Targets[0].Folder) != UnroutedName {
		t.Errorf("an unmatched fax went to %s %+v, want the unrouted folder", rt.Name, rt.Targets)
	}
	if rt := r.Route(&Facts{CalledNumber: "1001", Time: time.Now()}); rt.Name != "route1" {
		t.Errorf("an unnamed route is called %q, want route1", rt.Name)
	}
}

// TestRouteConfigErrors: every mistake is named at its key's line.
func TestRouteConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"an unknown key", "inbound:\n  routes:\n    - match:\n        dnis: ['1']\n      folder: x\n",
			[]string{`:4: inbound.routes[0].match: unknown key "dnis"`}},
		{"no target", "inbound:\n  routes:\n    - name: a\n      match: {called: ['1']}\n",
			[]string{`:3: inbound route a: no target`}},
		{"a bad day and hours", "inbound:\n  routes:\n    - match:\n        days: [mon-fry]\n        hours: ['8:00-25:00', '9-5']\n      folder: x\n",
			[]string{`:4: inbound route route1: days "mon-fry"`, `:5: inbound route route1: hours "8:00-25:00"`, `:5: inbound route route1: hours "9-5"`}},
		{"a mail target missing its parts", "connectors:\n  inbox: {plugin: ./connector, map: m}\nmaps: {m: m.yaml}\ninbound:\n  default:\n    mail:\n      connector: outbox\n      to: ['not an address']\n      attach: [png]\n",
			[]string{`:7: inbound default: mail.connector "outbox" is not defined`, `:8: inbound default: mail.to "not an address"`,
				`:6: inbound default: mail.from is missing`, `:9: inbound default: mail.attach "png"`}},
		{"a subject template that does not parse", "inbound:\n  default:\n    folder: x\n  routes:\n    - name: a\n      folder: y\n      mail: {connector: c, to: [a@b.c], from: f@b.c, subject: '{{.Pages'}\nconnectors:\n  c: {plugin: ./connector, map: m}\nmaps: {m: m.yaml}\n",
			[]string{`:7: inbound route a: subject template`}},
		{"an unknown time zone", "inbound:\n  timezone: Mars/Olympus\n  default: {folder: x}\n",
			[]string{`:2: inbound.timezone "Mars/Olympus"`}},
		{"a route name used twice", "inbound:\n  routes:\n    - {name: a, folder: x}\n    - {name: a, folder: y}\n",
			[]string{`:4: inbound route "a": the name is used twice`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, file, err := load(t, tc.yaml)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), file+w) {
					t.Errorf("error lacks %q:\n%v", file+w, err)
				}
			}
		})
	}
}
