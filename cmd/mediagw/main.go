// Command mediagw is the media gateway: it runs connectors, data maps and
// line drivers, and offers the tools an operator needs around them.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// stdio is where a command reads and writes; main passes the process's own,
// tests pass buffers.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// command is one subcommand. Name may have two words ("fax send").
type command struct {
	Name  string
	Usage string // one line: arguments
	Short string // one line: what it does
	Run   func(args []string, std stdio) int
}

var commands = map[string]command{}

// register adds a subcommand; each lives in its own file and registers itself
// from init.
func register(c command) {
	if _, dup := commands[c.Name]; dup {
		panic("duplicate command " + c.Name)
	}
	commands[c.Name] = c
}

func main() { os.Exit(dispatch(os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})) }

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

func dispatch(args []string, std stdio) int {
	if len(args) == 0 || isHelp(args[0]) {
		usage(std.out)
		return 0
	}
	if len(args) >= 2 {
		if c, ok := commands[args[0]+" "+args[1]]; ok {
			return c.Run(args[2:], std)
		}
	}
	if c, ok := commands[args[0]]; ok {
		return c.Run(args[1:], std)
	}
	// A group name alone ("fax", "datamap") lists its subcommands.
	if group := groupUsage(args[0]); group != "" {
		if len(args) == 2 && isHelp(args[1]) {
			fmt.Fprint(std.out, group)
			return 0
		}
		fmt.Fprint(std.err, group)
		return 2
	}
	fmt.Fprintf(std.err, "mediagw: unknown command %q\n\n", strings.Join(args, " "))
	usage(std.err)
	return 2
}

// parseFlags parses a command's flags. With -h or --help it prints the
// command's usage to stdout and the command exits 0; a bad flag prints the
// usage to stderr and the command exits 2. Usage printed later (for a
// missing argument) goes to stderr.
func parseFlags(fs *flag.FlagSet, args []string, std stdio) (exit bool, code int) {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(std.err)
	switch {
	case err == nil:
		return false, 0
	case errors.Is(err, flag.ErrHelp):
		std.out.Write(buf.Bytes()) //nolint:errcheck // a failing terminal has no one to tell
		return true, 0
	default:
		std.err.Write(buf.Bytes()) //nolint:errcheck
		return true, 2
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "mediagw — a media gateway: email (Office 365, Maildir) to fax and other legacy lines.")
	fmt.Fprintln(w, "\nUsage: mediagw COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].Short)
	}
	fmt.Fprintln(w, "\nRun 'mediagw COMMAND --help' for the flags of a command.")
}

func groupUsage(group string) string {
	var b strings.Builder
	names := make([]string, 0, len(commands))
	for n := range commands {
		if strings.HasPrefix(n, group+" ") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(&b, "  mediagw %s %s\n      %s\n", n, c.Usage, c.Short)
	}
	if b.Len() == 0 {
		return ""
	}
	return "Subcommands of " + group + ":\n" + b.String()
}
