package modemsim

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

// class2State is the Class 2/2.0 side of the emulator: the modem runs
// T.30 itself and reports with +F result lines.
type class2State struct {
	localID string
	vr, df  int
	online  bool
}

func (m *Modem) dialect(s20, s2 string) string {
	if m.class == "2.0" {
		return s20
	}
	return s2
}

func (m *Modem) hangup2(code int) string {
	if m.class == "2.0" {
		return fmt.Sprintf("+FHS:%02d", code)
	}
	return fmt.Sprintf("+FHNG:%d", code)
}

// class2 runs one Class 2/2.0 command; done means it answered the line.
func (m *Modem) class2(ctx context.Context, u, c string) (bool, error) {
	switch {
	case strings.HasPrefix(u, "+FLI=") || strings.HasPrefix(u, "+FLID="):
		v := c[strings.Index(c, "=")+1:]
		m.c2.localID = strings.Trim(v, `"`)
	case strings.HasPrefix(u, "+FCC=") || strings.HasPrefix(u, "+FDCC=") || strings.HasPrefix(u, "+FDIS="):
		f := strings.Split(u[strings.Index(u, "=")+1:], ",")
		if len(f) > 0 {
			m.c2.vr, _ = strconv.Atoi(f[0])
		}
		if len(f) > 4 {
			m.c2.df, _ = strconv.Atoi(f[4])
		}
	case u == "+FDT":
		return true, m.class2Page(ctx)
	case strings.HasPrefix(u, "+FET="):
		n, _ := strconv.Atoi(u[5:])
		m.class2PostPage(n)
		return true, nil
	case strings.HasPrefix(u, "+FBO=") && m.class == "2", strings.HasPrefix(u, "+FBOR=") && m.class == "2.0":
		// Bit order is +FBOR in Class 2 (SP-2388) and +FBO in Class 2.0
		// (T.32); a modem answers the other dialect's command with ERROR.
		m.result("ERROR")
		return true, nil
	default:
		// +FCR, +FNR, +FLO, +FIE, +FPP... are accepted.
	}
	return false, nil
}

func (m *Modem) class2Dial(ctx context.Context) error {
	caps := m.remote.Caps
	m.write("\r\n" + m.dialect("+FCO", "+FCON") + "\r\n")
	m.write(fmt.Sprintf("\r\n%s\"%s\"\r\n", m.dialect("+FCI:", "+FCSI:"), m.remote.CSI))
	vr, df := 0, 0
	if caps.Fine {
		vr = 1
	}
	if caps.MR {
		df = 1
	}
	m.write(fmt.Sprintf("\r\n%s%d,5,0,2,%d,0,0,0\r\n", m.dialect("+FIS:", "+FDIS:"), vr, df))
	m.c2.online = true
	m.state = stWaitPage
	m.result("OK")
	return nil
}

// negotiated picks what the modem would: the best speed that trains.
func (m *Modem) negotiated() t30.Params {
	p := t30.Params{Fine: m.c2.vr == 1 && m.remote.Caps.Fine, MR: m.c2.df == 1 && m.remote.Caps.MR}
	for _, s := range t30.Speeds {
		if m.remote.FTTAbove > 0 && s.Bits > m.remote.FTTAbove {
			continue
		}
		p.Speed = s
		break
	}
	return p
}

func brCode(bits int) int {
	for i, b := range []int{2400, 4800, 7200, 9600, 12000, 14400} {
		if b == bits {
			return i
		}
	}
	return 0
}

func (m *Modem) class2Page(ctx context.Context) error {
	if !m.c2.online {
		m.result("ERROR")
		return nil
	}
	if m.remote.IgnoreDCS {
		m.write("\r\n" + m.hangup2(25) + "\r\n")
		m.c2.online = false
		m.result("ERROR")
		return nil
	}
	p := m.negotiated()
	m.params = p
	m.mu.Lock()
	m.call.DCS = append(m.call.DCS, p)
	m.mu.Unlock()
	b2i := map[bool]int{false: 0, true: 1}
	m.write(fmt.Sprintf("\r\n%s%d,%d,0,2,%d,0,0,0\r\n", m.dialect("+FCS:", "+FDCS:"), b2i[p.Fine], brCode(p.Speed.Bits), b2i[p.MR]))
	m.result("CONNECT")
	if m.class == "2" {
		m.rw.Write([]byte{at.XON}) //nolint:errcheck
	}
	m.page++
	n := len(m.call.Pages) + 1
	data, err := m.readData(ctx, func(count int) bool {
		if n == m.remote.CloseInPage && count > 0 {
			m.closed = true
			if c, ok := m.rw.(interface{ Close() error }); ok {
				c.Close()
			}
			return false
		}
		if n == m.remote.SilentInPage && count > 0 {
			m.silent = true
		}
		return true
	})
	if err != nil {
		if m.closed {
			return nil
		}
		return err
	}
	if m.silent {
		return nil
	}
	m.lastPage = data
	m.state = stWaitPPM
	m.result("OK")
	return nil
}

func (m *Modem) class2PostPage(fet int) {
	if m.state != stWaitPPM {
		m.result("ERROR")
		return
	}
	m.ppm() // the remote's verdict, as in Class 1
	status := 1
	if t30.Code(m.lastPPMAnswer.FCF) == t30.RTN {
		status = 2
	}
	m.write(fmt.Sprintf("\r\n%s%d\r\n", m.dialect("+FPS:", "+FPTS:"), status))
	if fet == 2 && status == 1 {
		m.mu.Lock()
		m.call.Ended = true
		m.mu.Unlock()
		m.write("\r\n" + m.hangup2(0) + "\r\n")
		m.c2.online = false
	}
	m.state = stWaitPage
	m.result("OK")
}
