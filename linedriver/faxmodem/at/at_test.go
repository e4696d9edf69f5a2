package at

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

func TestStuffRoundTrip(t *testing.T) {
	for _, in := range [][]byte{nil, {DLE}, {1, DLE, DLE, 2}, {DLE, ETX, DLE}, bytes.Repeat([]byte{0x10, 0x03}, 100)} {
		s := Stuff(in)
		if got := Unstuff(s); !bytes.Equal(got, in) {
			t.Errorf("Unstuff(Stuff(%x)) = %x", in, got)
		}
		if bytes.Contains(s, []byte{DLE, ETX}) && !bytes.Contains(in, []byte{DLE, ETX}) {
			t.Errorf("Stuff(%x) contains DLE ETX", in)
		}
	}
}

func pair(t *testing.T, opts Options) (*Channel, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	c := New(a, opts)
	t.Cleanup(func() { c.Close(); b.Close() })
	return c, b
}

func TestCommandResults(t *testing.T) {
	tests := []struct {
		reply  string
		result string
		lines  []string
	}{
		{"AT+FCLASS=?\r\r\n0,1,1.0\r\n\r\nOK\r\n", "OK", []string{"0,1,1.0"}},
		{"\r\nCONNECT 9600\r\n", "CONNECT 9600", nil},
		{"\x11\r\nRING\r\nNO CARRIER\r\n", "NO CARRIER", nil},
		{"+FHS:11\r\nOK\r\n", "OK", []string{"+FHS:11"}},
		{"NO DIALTONE\r\n", "NO DIALTONE", nil},
		{"+FCERROR\r\n", "+FCERROR", nil},
	}
	for _, tt := range tests {
		c, m := pair(t, Options{})
		go func() {
			buf := make([]byte, 64)
			m.Read(buf)
			m.Write([]byte(tt.reply))
		}()
		r, err := c.Command(context.Background(), "+FCLASS=?", time.Second)
		if err != nil {
			t.Fatalf("%q: %v", tt.reply, err)
		}
		if r.Result != tt.result || len(r.Lines) != len(tt.lines) {
			t.Errorf("%q: got %+v", tt.reply, r)
		}
	}
}

func TestTimeoutAndClose(t *testing.T) {
	c, m := pair(t, Options{})
	go func() { buf := make([]byte, 64); m.Read(buf) }()
	_, err := c.Command(context.Background(), "", 50*time.Millisecond)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("silent modem: %v", err)
	}
	m.Close()
	_, err = c.ReadResult(context.Background(), time.Second)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("closed port: %v", err)
	}
}

// eofPort reads (0, io.EOF) like tarm/serial on a read timeout.
type eofPort struct {
	data   chan []byte
	closed chan struct{}
}

func (p *eofPort) Read(b []byte) (int, error) {
	select {
	case d := <-p.data:
		return copy(b, d), nil
	case <-p.closed:
		return 0, os.ErrClosed
	case <-time.After(10 * time.Millisecond):
		return 0, io.EOF
	}
}
func (p *eofPort) Close() error                { close(p.closed); return nil }
func (p *eofPort) Write(b []byte) (int, error) { return len(b), nil }

// The modem answers after 80 ms of EOF reads: silence, not an error. The
// bubble's clock makes the 80 ms exact and free.
func TestEOFIsSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &eofPort{data: make(chan []byte, 1), closed: make(chan struct{})}
		c := New(p, Options{EOFIsSilence: true})
		defer c.Close()
		go func() { time.Sleep(80 * time.Millisecond); p.data <- []byte("OK\r\n") }()
		r, err := c.ReadResult(context.Background(), time.Second)
		if err != nil || !r.OK() {
			t.Fatalf("got %+v, %v", r, err)
		}
	})
}

func TestReadData(t *testing.T) {
	c, m := pair(t, Options{})
	frame := []byte{0xff, 0x13, 0x80, DLE, ETX, 0x11, 0x13}
	go m.Write(append(append(Stuff(frame), DLE, ETX), "\r\nOK\r\n"...))
	got, err := c.ReadData(context.Background(), time.Second)
	if err != nil || !bytes.Equal(got, frame) {
		t.Fatalf("ReadData = %x, %v", got, err)
	}
	r, err := c.ReadResult(context.Background(), time.Second)
	if err != nil || !r.OK() {
		t.Fatalf("after data: %+v %v", r, err)
	}
}

func TestWriteDataXOFF(t *testing.T) {
	c, m := pair(t, Options{XOFFTimeout: 2 * time.Second})
	data := bytes.Repeat([]byte{DLE, 1, 2, 3}, 1000)
	got := make(chan []byte)
	go func() {
		var all []byte
		buf := make([]byte, 512)
		n, _ := m.Read(buf)
		all = append(all, buf[:n]...)
		m.Write([]byte{XOFF})
		paused := time.Now()
		time.Sleep(150 * time.Millisecond)
		// Writes in flight may complete, but no new chunk may start during the pause.
		m.Write([]byte{XON})
		for !bytes.HasSuffix(all, []byte{DLE, ETX}) || bytes.Count(all, []byte{DLE, ETX}) == 0 {
			n, err := m.Read(buf)
			if err != nil {
				break
			}
			all = append(all, buf[:n]...)
		}
		_ = paused
		got <- all
	}()
	start := time.Now()
	if err := c.WriteData(context.Background(), data, 0, 0); err != nil {
		t.Fatal(err)
	}
	all := <-got
	if time.Since(start) < 150*time.Millisecond {
		t.Errorf("writer did not pause on XOFF")
	}
	if !bytes.Equal(Unstuff(all[:len(all)-2]), data) {
		t.Errorf("data changed in transit")
	}
}

func TestWriteDataPacing(t *testing.T) {
	c, m := pair(t, Options{})
	go io.Copy(io.Discard, m)
	data := make([]byte, 3000) // 24000 bits at 96000 bit/s = 250 ms
	start := time.Now()
	if err := c.WriteData(context.Background(), data, 96000, 0); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("3000 bytes at 96000 bit/s took %v, want about 250ms", d)
	}
}

func FuzzReadResult(f *testing.F) {
	f.Add([]byte("\r\nOK\r\n"))
	f.Add([]byte("+FCO\r\n+FCS:1,5,0,2,0,0,0,0\r\nOK\r\n"))
	f.Add([]byte("\x10\x03CONNECT\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, m := net.Pipe()
		c := New(a, Options{})
		defer c.Close()
		go func() { m.Write(b); m.Close() }()
		r, err := c.ReadResult(context.Background(), 100*time.Millisecond)
		if err == nil && !IsFinal(r.Result) {
			t.Fatalf("non-final result %q", r.Result)
		}
	})
}

func FuzzUnstuff(f *testing.F) {
	f.Add([]byte{DLE, DLE, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if !bytes.Equal(Unstuff(Stuff(b)), b) {
			t.Fatal("round trip")
		}
		Unstuff(b)
	})
}

// A modem that ends the transmission by itself (the far end hung up) stops
// the write at once, even while it holds the writer with XOFF, and a
// result code split over reads is still found.
func TestWriteDataStopsOnResult(t *testing.T) {
	tests := []struct {
		name    string
		replies [][]byte
		carrier bool // matches ErrNoCarrier
	}{
		{"NO CARRIER after XOFF", [][]byte{{XOFF}, []byte("\r\nNO CARRIER\r\n")}, true},
		{"NO CARRIER in pieces", [][]byte{{XOFF}, []byte("\r\nNO CA"), []byte("RRIER\r\n")}, true},
		{"ERROR", [][]byte{[]byte("\r\nERROR\r\n")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, m := pair(t, Options{XOFFTimeout: 5 * time.Second})
			go func() {
				buf := make([]byte, 4096)
				m.Read(buf)
				for _, r := range tt.replies {
					m.Write(r)
				}
				for {
					if _, err := m.Read(buf); err != nil {
						return
					}
				}
			}()
			start := time.Now()
			err := c.WriteData(context.Background(), bytes.Repeat([]byte{1}, 100000), 9600, 0)
			var re *ResultError
			if !errors.As(err, &re) || errors.Is(err, ErrNoCarrier) != tt.carrier {
				t.Fatalf("got %v", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("stopped after %v", took)
			}
			// the result code was consumed: the next command reads its own
			go func() {
				m.Write([]byte("\r\nOK\r\n"))
			}()
			if r, err := c.ReadResult(context.Background(), time.Second); err != nil || !r.OK() {
				t.Errorf("next result %+v %v", r, err)
			}
		})
	}
}

// The DLE ETX of an aborted reception marks the response: the command
// that caused it was not run.
func TestAbortedResponse(t *testing.T) {
	tests := []struct {
		reply   string
		aborted bool
	}{
		{"\x10\x03\r\nOK\r\n", true},
		{"\x10\x03OK\r\n", true},
		{"\r\nOK\r\n", false},
	}
	for _, tt := range tests {
		c, m := pair(t, Options{})
		go func() {
			buf := make([]byte, 64)
			m.Read(buf)
			m.Write([]byte(tt.reply))
		}()
		r, err := c.Command(context.Background(), "H0", time.Second)
		if err != nil || !r.OK() || r.Aborted != tt.aborted {
			t.Errorf("%q: %+v %v", tt.reply, r, err)
		}
	}
}
