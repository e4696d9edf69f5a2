// Command mediagw is the media gateway: it runs connectors, data maps and
// line drivers, and offers the tools an operator needs around them.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// command is one subcommand. Name may have two words ("fax send").
type command struct {
	Name  string
	Usage string // one line: arguments
	Short string // one line: what it does
	Run   func(args []string) int
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

func main() { os.Exit(dispatch(os.Args[1:])) }

func dispatch(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(os.Stdout)
		return 0
	}
	if len(args) >= 2 {
		if c, ok := commands[args[0]+" "+args[1]]; ok {
			return c.Run(args[2:])
		}
	}
	if c, ok := commands[args[0]]; ok {
		return c.Run(args[1:])
	}
	// A group name alone ("fax", "datamap") lists its subcommands.
	if group := groupUsage(args[0]); group != "" {
		fmt.Fprint(os.Stderr, group)
		return 2
	}
	fmt.Fprintf(os.Stderr, "mediagw: unknown command %q\n\n", strings.Join(args, " "))
	usage(os.Stderr)
	return 2
}

func usage(w *os.File) {
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
	for n, c := range commands {
		if strings.HasPrefix(n, group+" ") {
			fmt.Fprintf(&b, "  mediagw %s %s\n      %s\n", n, c.Usage, c.Short)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "Subcommands of " + group + ":\n" + b.String()
}
