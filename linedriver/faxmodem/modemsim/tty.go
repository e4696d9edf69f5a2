package modemsim

import (
	"io"
	"net"
)

func netPipe() (io.ReadWriteCloser, io.ReadWriteCloser) { return net.Pipe() }
