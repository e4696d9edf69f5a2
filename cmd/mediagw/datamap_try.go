package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mediagw/mediagw/datamap"
	"github.com/mediagw/mediagw/host/config"
)

func init() {
	register(command{Name: "datamap try", Usage: "-c FILE MAP < mail.eml", Short: "show what a data map makes of one email", Run: runDatamapTry})
}

func runDatamapTry(args []string) int {
	fs := flag.NewFlagSet("datamap try", flag.ContinueOnError)
	cfgPath := fs.String("c", "", "gateway config naming the map (or give a map file with -f)")
	mapFile := fs.String("f", "", "a data-map file, instead of -c and MAP")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw datamap try -c FILE MAP < mail.eml\n       mediagw datamap try -f MAPFILE < mail.eml\n\nPrints every field with its value and where it came from, the documents\nand the route, or the reason the mail would be rejected (exit code 1).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var file, name string
	switch {
	case *mapFile != "" && fs.NArg() == 0:
		file, name = *mapFile, *mapFile
	case *cfgPath != "" && fs.NArg() == 1:
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		name = fs.Arg(0)
		f, ok := cfg.Maps[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "%s: no map named %q (have: %s)\n", *cfgPath, name, strings.Join(config.SortedKeys(cfg.Maps), ", "))
			return 2
		}
		file = cfg.Resolve(f)
	default:
		fs.Usage()
		return 2
	}
	spec, err := datamap.LoadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	m, err := datamap.Compile(name, spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "read mail from stdin:", err)
		return 1
	}
	// Try prints every field it found, then OK or REJECTED with the reason.
	if err := datamap.Try(os.Stdout, m, raw); err != nil {
		var rej *datamap.Rejection
		if !errors.As(err, &rej) {
			fmt.Fprintln(os.Stderr, err)
		}
		return 1
	}
	return 0
}
