package main

import (
	"encoding/json"
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

// Exit codes of datamap try.
const (
	tryAccepted = 0 // the map accepts the mail (and every routed driver that previews does)
	tryRejected = 1 // the map or a routed driver rejects it
	tryUsage    = 2 // bad arguments, config or map file, or no mail to read
)

func runDatamapTry(args []string, std stdio) int {
	stdin, stdout, stderr := std.in, std.out, std.err
	fs := flag.NewFlagSet("datamap try", flag.ContinueOnError)
	cfgPath := fs.String("c", "", "gateway config naming the map (or give a map file with -f)")
	mapFile := fs.String("f", "", "a data-map file, instead of -c and MAP")
	asJSON := fs.Bool("json", false, "print the preview as one JSON document")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw datamap try [--json] -c FILE MAP < mail.eml\n       mediagw datamap try [--json] -f MAPFILE < mail.eml\n\nPrints every field with its value and where it came from, the documents\n(the start of a text as it will be faxed) and the route, or the reason the\nmail would be rejected. Exit code 0: accepted, 1: rejected, 2: usage,\nconfig or map error.")
		fs.PrintDefaults()
	}
	if exit, code := parseFlags(fs, args, std); exit {
		return code // 0 for -h, else tryUsage (2)
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
			fmt.Fprintln(stderr, err)
			return tryUsage
		}
		name = fs.Arg(0)
		f, ok := cfg.Maps[name]
		if !ok {
			fmt.Fprintf(stderr, "%s: no map named %q (have: %s)\n", *cfgPath, name, strings.Join(config.SortedKeys(cfg.Maps), ", "))
			return tryUsage
		}
		file = cfg.Resolve(f)
	default:
		fs.Usage()
		return tryUsage
	}
	spec, err := datamap.LoadFile(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return tryUsage
	}
	m, err := datamap.Compile(name, spec)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return tryUsage
	}
	raw, err := io.ReadAll(stdin)
	if err != nil {
		fmt.Fprintln(stderr, "datamap try: read mail from stdin:", err)
		return tryUsage
	}
	if len(raw) == 0 {
		fmt.Fprintln(stderr, "datamap try: no mail on stdin")
		return tryUsage
	}
	res, applyErr := m.Apply(raw)
	var drivers []datamap.PreviewDriver
	if applyErr == nil && cfg != nil {
		drivers = previewDrivers(cfg, res)
	}
	refused := false
	for _, d := range drivers {
		refused = refused || d.Refused != ""
	}
	code := tryAccepted
	if applyErr != nil || refused {
		code = tryRejected
	}
	if *asJSON {
		p := datamap.NewPreview(m, res, applyErr)
		if drivers != nil {
			p.Drivers = drivers
		}
		p.Accepted = code == tryAccepted
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(p); err != nil {
			fmt.Fprintln(stderr, "datamap try:", err)
			return tryUsage
		}
		return code
	}
	// Try prints every field it found, then OK or REJECTED with the reason.
	_ = datamap.Try(stdout, m, raw)
	if len(drivers) > 0 {
		fmt.Fprintln(stdout, "drivers:")
		for _, d := range drivers {
			if d.Refused != "" {
				fmt.Fprintf(stdout, "  %s (%s): REFUSED: %s\n", d.Name, d.Type, d.Refused)
			} else {
				fmt.Fprintf(stdout, "  %s (%s): %s\n", d.Name, d.Type, d.Send)
			}
		}
	}
	return code
}

// previewDrivers asks each routed driver that can preview
// (linedriver.Previewer, e.g. the alarm drivers) what it would send for
// the record, or why it refuses it.
func previewDrivers(cfg *config.Config, res *datamap.Result) []datamap.PreviewDriver {
	rec := &linedriver.Record{ID: "preview", Fields: res.Values()}
	var out []datamap.PreviewDriver
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
		if p, can := d.(linedriver.Previewer); can {
			pd := datamap.PreviewDriver{Name: name, Type: dc.Type}
			if line, err := p.Preview(rec); err != nil {
				pd.Refused = err.Error()
			} else {
				pd.Send = line
			}
			out = append(out, pd)
		}
		d.Close()
	}
	return out
}
