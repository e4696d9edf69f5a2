package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/mediagw/mediagw/datamap"
	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/linedriver"
)

func init() {
	register(command{Name: "datamap try", Usage: "-c FILE MAP < mail.eml", Short: "show what a data map makes of one email", Run: runDatamapTry})
}

func runDatamapTry(args []string, std stdio) int {
	fs := flag.NewFlagSet("datamap try", flag.ContinueOnError)
	cfgPath := fs.String("c", "", "gateway config naming the map (or give a map file with -f)")
	mapFile := fs.String("f", "", "a data-map file, instead of -c and MAP")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw datamap try -c FILE MAP < mail.eml\n       mediagw datamap try -f MAPFILE < mail.eml\n\nPrints every field with its value and where it came from, the documents\nand the route, or the reason the mail would be rejected (exit code 1).")
		fs.PrintDefaults()
	}
	if exit, code := parseFlags(fs, args, std); exit {
		return code
	}
	var file, name string
	var cfg *config.Config
	switch {
	case *mapFile != "" && fs.NArg() == 0:
		file, name = *mapFile, *mapFile
	case *cfgPath != "" && fs.NArg() == 1:
		var err error
		cfg, err = config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(std.err, err)
			return 1
		}
		name = fs.Arg(0)
		f, ok := cfg.Maps[name]
		if !ok {
			fmt.Fprintf(std.err, "%s: no map named %q (have: %s)\n", *cfgPath, name, strings.Join(config.SortedKeys(cfg.Maps), ", "))
			return 2
		}
		file = cfg.Resolve(f)
	default:
		fs.Usage()
		return 2
	}
	spec, err := datamap.LoadFile(file)
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	m, err := datamap.Compile(name, spec)
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	raw, err := io.ReadAll(std.in)
	if err != nil {
		fmt.Fprintln(std.err, "read mail from stdin:", err)
		return 1
	}
	// Try prints every field it found, then OK or REJECTED with the reason.
	if err := datamap.Try(std.out, m, raw); err != nil {
		var rej *datamap.Rejection
		if !errors.As(err, &rej) {
			fmt.Fprintln(std.err, err)
		}
		return 1
	}
	if cfg != nil && !previewDrivers(std.out, cfg, m, raw) {
		return 1
	}
	return 0
}

// previewDrivers prints what each routed driver that can preview
// (linedriver.Previewer, e.g. the alarm drivers) would send, or why it
// refuses the record. It reports false when a driver refuses.
func previewDrivers(w io.Writer, cfg *config.Config, m *datamap.Map, raw []byte) bool {
	res, err := m.Apply(raw)
	if err != nil {
		return true // Try has said why
	}
	rec := &linedriver.Record{ID: "preview", Fields: res.Values()}
	ok, header := true, false
	for _, name := range res.Routes {
		dc, found := cfg.Drivers[name]
		if !found {
			continue
		}
		f, found := linedriver.Lookup(dc.Type)
		if !found {
			continue
		}
		opts, err := config.NodeJSON(&dc.Options)
		if err != nil {
			continue
		}
		d, err := f(name, opts, nil)
		if err != nil {
			continue // validate reports it
		}
		p, can := d.(linedriver.Previewer)
		if can {
			if !header {
				fmt.Fprintln(w, "drivers:")
				header = true
			}
			if line, err := p.Preview(rec); err != nil {
				fmt.Fprintf(w, "  %s (%s): REFUSED: %v\n", name, dc.Type, err)
				ok = false
			} else {
				fmt.Fprintf(w, "  %s (%s): %s\n", name, dc.Type, line)
			}
		}
		d.Close()
	}
	return ok
}
