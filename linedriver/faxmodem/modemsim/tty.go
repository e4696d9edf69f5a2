package modemsim

import (
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

func netPipe() (io.ReadWriteCloser, io.ReadWriteCloser) { return net.Pipe() }

// makeRaw puts a tty in raw mode: no echo, no line editing, no CR/NL
// translation, no software flow control by the kernel.
func makeRaw(f *os.File) error {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("modemsim: termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("modemsim: termios: %w", err)
	}
	return nil
}
