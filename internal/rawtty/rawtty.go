// Package rawtty puts a terminal (in practice the tty side of a pty that
// stands in for a serial port) in raw mode, so that bytes pass unchanged: no
// echo, no line editing, no CR/NL translation, no signals, no software flow
// control by the kernel, 8 data bits, reads return as soon as one byte came.
package rawtty

import (
	"fmt"
	"os"

	"golang.org/x/term"
)

// Make puts f in raw mode (cfmakeraw, as golang.org/x/term does it).
func Make(f *os.File) error {
	if _, err := term.MakeRaw(int(f.Fd())); err != nil {
		return fmt.Errorf("rawtty: %s: %w", f.Name(), err)
	}
	return nil
}

// Is tells whether f is a terminal.
func Is(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
