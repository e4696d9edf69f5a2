package modemsim

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

// Caller is a far fax machine that calls the emulated Class 2/2.0 modem
// and sends Pages pages: the host answers with ATA and takes each page with
// AT+FDR.
type Caller struct {
	TSI string // its identification (default "+1 555 0200")
	// Caps is what it can send; with the host's +FCC it makes the session
	// (default: V.17, fine, MR, MMR, ECM).
	Caps *t30.Caps
	// Pages is how many pages it sends; Encode codes page i (0-based) for
	// the session.
	Pages  int
	Encode func(i int, p t30.Params) ([]byte, error)
	// Resend is how many times it sends a page again after RTN before it
	// goes on to the next page (or, after the last, hangs up).
	Resend int
	// HangupInPage makes it hang up in the middle of this page (1-based; 0:
	// never): the modem ends the data with DLE ETX and reports +FHS:90.
	HangupInPage int
	// Corrupt maps a page (1-based) to how many times its data arrives
	// damaged (a line hit: 16 octets of 1 bits in its middle, which no
	// code word has), as it can without ECM.
	Corrupt map[int]int
}

// inbound is the state of a call from the Caller.
type inbound struct {
	c       *Caller
	p       t30.Params
	page    int // the page being sent (0-based)
	resent  int // times the current page was sent again
	sent    bool
	fet     int
	verdict int
	corrupt map[int]int
}

// Ring makes the modem say RING, as on an incoming call.
func (m *Modem) Ring() { m.result("RING") }

// class2Answer is ATA in Class 2/2.0: the Caller's call is connected.
func (m *Modem) class2Answer() {
	c := m.remote.Caller
	if c == nil {
		m.result("NO CARRIER")
		return
	}
	if c.TSI == "" {
		c.TSI = "+1 555 0200"
	}
	if c.Caps == nil {
		c.Caps = &t30.Caps{CanReceive: true, V17: true, V29: true, V27ter: true, Fine: true, MR: true, MMR: true, ECM: true}
	}
	m.mu.Lock()
	m.call = &Call{Incoming: true, TSI: c.TSI}
	m.calls = append(m.calls, m.call)
	m.mu.Unlock()
	// The session: what the caller sends within what the host offered.
	caps := m.remote.Caps
	m.remote.Caps = c.Caps
	p := m.negotiated()
	m.remote.Caps = caps
	m.params = p
	m.mu.Lock()
	m.call.DCS = append(m.call.DCS, p)
	m.mu.Unlock()
	m.rx = &inbound{c: c, p: p, corrupt: map[int]int{}}
	for k, v := range c.Corrupt {
		m.rx.corrupt[k] = v
	}
	m.c2.online, m.inCall = true, true
	m.write("\r\n" + m.dialect("+FCO", "+FCON") + "\r\n")
	m.write(fmt.Sprintf("\r\n%s\"%s\"\r\n", m.dialect("+FTI:", "+FTSI:"), c.TSI))
	m.write(fmt.Sprintf("\r\n%s%s\r\n", m.dialect("+FCS:", "+FDCS:"), sessionParams(p)))
	m.result("OK")
}

// class2Receive is AT+FDR: the next page, or the end of the call.
func (m *Modem) class2Receive(ctx context.Context) error {
	rx := m.rx
	if rx == nil || !m.c2.online {
		m.result("ERROR")
		return nil
	}
	if rx.sent {
		// the verdict on the last page decides what the caller does
		m.mu.Lock()
		m.call.Verdicts = append(m.call.Verdicts, rx.verdict)
		m.mu.Unlock()
		switch {
		case rx.verdict != 1 && rx.resent < rx.c.Resend:
			rx.resent++
			m.write(fmt.Sprintf("\r\n%s%s\r\n", m.dialect("+FCS:", "+FDCS:"), sessionParams(rx.p)))
		case rx.fet == 2:
			m.endIncoming(0)
			return nil
		default:
			rx.page++
			rx.resent = 0
		}
		rx.sent, rx.verdict = false, 0
	}
	data, err := rx.c.Encode(rx.page, rx.p)
	if err != nil {
		return fmt.Errorf("modemsim: caller's page %d: %w", rx.page+1, err)
	}
	if rx.corrupt[rx.page+1] > 0 {
		rx.corrupt[rx.page+1]--
		data = append([]byte(nil), data...)
		mid := len(data) / 2
		for i := mid; i < min(mid+16, len(data)); i++ {
			data[i] = 0xFF
		}
	}
	m.result("CONNECT")
	// the host releases the data with DC1 (Class 2) or DC2 (Class 2.0)
	if err := m.waitByte(ctx, byte(m.dialectInt(0x12, 0x11))); err != nil {
		return err
	}
	if rx.page+1 == rx.c.HangupInPage {
		m.write(string(at.Stuff(data[:len(data)/2])) + string([]byte{at.DLE, at.ETX}))
		m.mu.Lock()
		m.call.Hangup = true
		m.mu.Unlock()
		m.endIncoming(90)
		return nil
	}
	m.write(string(at.Stuff(data)) + string([]byte{at.DLE, at.ETX}))
	rx.fet = 0 // MPS
	if rx.page == rx.c.Pages-1 {
		rx.fet = 2 // EOP
	}
	rx.sent = true
	m.write(fmt.Sprintf("\r\n%s1,%d,0,0,0\r\n", m.dialect("+FPS:", "+FPTS:"), 0))
	m.write(fmt.Sprintf("\r\n+FET:%d\r\n", rx.fet))
	m.result("OK")
	return nil
}

// class2Verdict is AT+FPS=n (AT+FPTS=n): the host's verdict on the page.
func (m *Modem) class2Verdict(v string) {
	if m.rx == nil || !m.rx.sent {
		m.result("ERROR")
		return
	}
	m.rx.verdict, _ = strconv.Atoi(strings.TrimSpace(v))
	m.result("OK")
}

// class2Abort is AT+FKS (AT+FK): the host ends the call.
func (m *Modem) class2Abort() {
	if m.call != nil && m.rx != nil {
		m.mu.Lock()
		m.call.Aborted = true
		m.mu.Unlock()
		m.endIncoming(2)
		return
	}
	m.result("OK")
}

func (m *Modem) endIncoming(code int) {
	m.mu.Lock()
	m.call.Ended = code == 0
	m.mu.Unlock()
	m.write("\r\n" + m.hangup2(code) + "\r\n")
	m.c2.online, m.inCall, m.rx = false, false, nil
	m.result("OK")
}

func (m *Modem) dialectInt(v20, v2 int) int {
	if m.class == "2.0" {
		return v20
	}
	return v2
}

// waitByte drops what the host sends until b.
func (m *Modem) waitByte(ctx context.Context, b byte) error {
	for {
		for i, x := range m.pending {
			if x == b {
				m.pending = m.pending[i+1:]
				return nil
			}
		}
		m.pending = m.pending[:0]
		if err := m.fill(ctx, 0); err != nil {
			return err
		}
	}
}
