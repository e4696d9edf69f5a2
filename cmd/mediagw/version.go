package main

import (
	"flag"
	"fmt"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func init() {
	register(command{Name: "version", Short: "print the version", Run: func(args []string, std stdio) int {
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		fs.Usage = func() { fmt.Fprintln(fs.Output(), "Usage: mediagw version\n\nPrints the version of mediagw.") }
		if exit, code := parseFlags(fs, args, std); exit {
			return code
		}
		v := version
		if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
			v = "dev (" + bi.GoVersion + ")"
		}
		fmt.Fprintln(std.out, "mediagw", v)
		return 0
	}})
}
