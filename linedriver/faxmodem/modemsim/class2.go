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
	localID    string
	vr, df, ec int
	online     bool
}

// defaultRanges is the default answer to AT+FCC=?: fine, V.17, MH, MR
// and MMR, ECM with 64- and 256-octet frames.
const defaultRanges = "(0,1),(0-5),(0-2),(0-2),(0-3),(0-2),(0),(0-7)"

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
	case u == "+FCC=?" || u == "+FDCC=?":
		m.write("\r\n" + m.remote.Ranges + "\r\n")
	case strings.HasPrefix(u, "+FCC=") || strings.HasPrefix(u, "+FDCC=") || strings.HasPrefix(u, "+FIS=") || strings.HasPrefix(u, "+FDIS="):
		f := strings.Split(u[strings.Index(u, "=")+1:], ",")
		vals := make([]int, 8)
		for i := range min(len(f), 8) {
			vals[i], _ = strconv.Atoi(strings.TrimSpace(f[i]))
			if strings.TrimSpace(f[i]) != "" && !rangeHas(m.remote.Ranges, i, vals[i]) {
				m.result("ERROR")
				return true, nil
			}
		}
		m.c2.vr, m.c2.df, m.c2.ec = vals[0], vals[4], vals[5]
	case u == "A":
		m.class2Answer()
		return true, nil
	case u == "+FDR":
		return true, m.class2Receive(ctx)
	case strings.HasPrefix(u, "+FPS=") || strings.HasPrefix(u, "+FPTS="):
		m.class2Verdict(u[strings.Index(u, "=")+1:])
		return true, nil
	case u == "+FKS" || u == "+FK":
		m.class2Abort()
		return true, nil
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
	vr, df, ec := 0, 0, 0
	if caps.Fine {
		vr = 1
	}
	if caps.MR {
		df = 1
	}
	if caps.ECM {
		ec = 2
		if caps.MMR {
			df = 3
		}
	}
	m.write(fmt.Sprintf("\r\n%s%d,5,0,2,%d,%d,0,0\r\n", m.dialect("+FIS:", "+FDIS:"), vr, df, ec))
	m.c2.online = true
	m.state = stWaitPage
	m.result("OK")
	return nil
}

// negotiated picks what the modem would: the best speed that trains.
func (m *Modem) negotiated() t30.Params {
	caps := m.remote.Caps
	p := t30.Params{Fine: m.c2.vr == 1 && caps.Fine}
	if m.c2.ec > 0 && caps.ECM {
		p.ECM, p.FrameSize = true, 256
		if m.c2.ec == 1 {
			p.FrameSize = 64
		}
	}
	switch {
	case m.c2.df == 3 && p.ECM && caps.MMR:
		p.MMR = true
	case m.c2.df >= 1 && caps.MR:
		p.MR = true
	}
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
	m.write(fmt.Sprintf("\r\n%s%s\r\n", m.dialect("+FCS:", "+FDCS:"), sessionParams(p)))
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
	if m.params.ECM {
		m.ecmLine(data)
	}
	m.lastPage = data
	m.state = stWaitPPM
	m.result("OK")
	return nil
}

// ecmLine plays what a Class 2 modem does by itself in error correction
// mode: it cuts the page into frames, and the far end asks again (PPR) for
// those CorruptFrames damages; the host sees none of it.
func (m *Modem) ecmLine(data []byte) {
	frames := (len(data) + m.params.FrameSize - 1) / m.params.FrameSize
	ppr := 0
	for n, times := range m.remote.CorruptFrames {
		if n < frames && n < 256 {
			ppr = max(ppr, times)
			for range times {
				m.mu.Lock()
				m.call.Resent = append(m.call.Resent, n)
				m.mu.Unlock()
			}
		}
	}
	m.mu.Lock()
	m.call.PPR += ppr
	m.mu.Unlock()
}

// sessionParams is the +FCS report of p: vr,br,wd,ln,df,ec,bf,st.
func sessionParams(p t30.Params) string {
	vr, df, ec := 0, 0, 0
	if p.Fine {
		vr = 1
	}
	switch {
	case p.MMR:
		df = 3
	case p.MR:
		df = 1
	}
	if p.ECM {
		ec = 2
		if p.FrameSize == 64 {
			ec = 1
		}
	}
	return fmt.Sprintf("%d,%d,0,2,%d,%d,0,0", vr, brCode(p.Speed.Bits), df, ec)
}

// rangeHas reports whether parameter i of an AT+FCC=? answer takes x.
func rangeHas(ranges string, i, x int) bool {
	items := strings.Split(strings.Trim(ranges, "()"), "),(")
	if i >= len(items) {
		return true
	}
	for _, part := range strings.Split(items[i], ",") {
		lo, hi, ok := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if ok {
			b, _ = strconv.Atoi(hi)
		}
		if x >= a && x <= b {
			return true
		}
	}
	return false
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
