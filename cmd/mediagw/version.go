package main

import (
	"flag"
	"fmt"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func init() {
	register(command{Name: "version", Short: "print the version", Run: func(args []string) int {
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		if err := fs.Parse(args); err != nil {
			return 2
		}
		v := version
		if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
			v = "dev (" + bi.GoVersion + ")"
		}
		fmt.Println("mediagw", v)
		return 0
	}})
}
