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
func runHashPassword(args []string) int {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw hash-password\n\nAsks for a password (or reads the first line of stdin) and prints a bcrypt\nhash to put under status.users[].password_hash in the gateway's config.")
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		if err == nil {
			fs.Usage()
		}
		return 2
	}
	pw, err := readPassword(os.Stdin, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hash-password:", err)
		return 1
	}
	h, err := passwd.Hash(pw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hash-password:", err)
		return 1
	}
	fmt.Println(h)
	return 0
}

func readPassword(in *os.File, prompt io.Writer) (string, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
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
