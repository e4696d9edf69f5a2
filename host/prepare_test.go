package host

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/host/config"
)

// TestPrepareDriverOptionLines: a driver's option problem names the file
// and the line of the option itself, not of the driver's section.
func TestPrepareDriverOptionLines(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, "connector")
	if err := os.WriteFile(plugin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mapFile, err := filepath.Abs("../examples/maps/archive.yaml")
	if err != nil {
		t.Fatal(err)
	}
	head := "connectors:\n  inbox:\n    plugin: ./connector\n    map: archive\nmaps:\n  archive: " + mapFile + "\ndrivers:\n"
	// Line 8 is the first line under drivers:.
	for _, tc := range []struct {
		name, drivers string
		want          []string
	}{
		{"unknown key of the file driver", "  archive:\n    type: file\n    options:\n      dir: out\n      requires: [sender]\n",
			[]string{":12: file driver archive: options: requires: unknown key (valid keys: dir, require)"}},
		{"missing key of the file driver", "  archive:\n    type: file\n    options:\n      require: [sender]\n",
			[]string{":11: file driver archive: options: dir: missing"}},
		{"unknown key deep in the fax driver's options", "  fax:\n    type: faxmodem\n    options:\n      local_id: X\n      devices:\n        - device: /dev/null\n        - device: /dev/zero\n          clas: \"1\"\n",
			[]string{`:15: faxmodem: options: devices.1.clas: json: unknown field "clas" (valid keys: class, device, `}},
		{"removed key of the fax driver, with its replacement", "  fax:\n    type: faxmodem\n    options:\n      devices:\n        - device: /dev/null\n          dial_prefix: \"9\"\n",
			[]string{":13: faxmodem: options: devices.0.dial_prefix: dial_prefix was removed: the outside-line code goes in the driver's dial.outside_line"}},
		{"wrong type in the fax driver's options", "  fax:\n    type: faxmodem\n    options:\n      devices: []\n      max_speed: fast\n",
			[]string{":12: faxmodem: options: max_speed: got a string, want a whole number"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "mediagw.yaml")
			cfg, err := config.Parse(file, []byte(head+tc.drivers))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Prepare(cfg, slog.New(slog.DiscardHandler))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Prepare = %v, want a *config.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), file+w) {
					t.Errorf("error lacks %q:\n%s", file+w, err)
				}
			}
		})
	}
}
