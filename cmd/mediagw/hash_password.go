package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/mediagw/mediagw/host/console/passwd"
)

func init() {
	register(command{Name: "hash-password", Usage: "< password", Short: "print a bcrypt hash for status.users in the config", Run: runHashPassword})
}

// runHashPassword reads a password (asked twice, without echo, on a
// terminal; else the first line of stdin) and prints its bcrypt hash.
func runHashPassword(args []string, std stdio) int {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw hash-password\n\nAsks for a password (or reads the first line of stdin) and prints a bcrypt\nhash to put under status.users[].password_hash in the gateway's config.")
	}
	if exit, code := parseFlags(fs, args, std); exit {
		return code
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	pw, err := readPassword(std.in, std.err)
	if err != nil {
		fmt.Fprintln(std.err, "hash-password:", err)
		return 1
	}
	h, err := passwd.Hash(pw)
	if err != nil {
		fmt.Fprintln(std.err, "hash-password:", err)
		return 1
	}
	fmt.Fprintln(std.out, h)
	return 0
}

func readPassword(in io.Reader, prompt io.Writer) (string, error) {
	f, isFile := in.(*os.File)
	if !isFile || !term.IsTerminal(int(f.Fd())) {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fd := int(f.Fd())
	fmt.Fprint(prompt, "Password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", err
	}
	fmt.Fprint(prompt, "Again: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", fmt.Errorf("the two passwords differ")
	}
	return string(a), nil
}
