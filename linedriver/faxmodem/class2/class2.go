// Package class2 sends a fax through a Class 2 (SP-2388) or Class 2.0
// (T.32) modem, where the modem runs T.30 itself: the host sets its
// identification and capabilities, dials, and hands over page data with
// AT+FDT, ending each page with AT+FET; the modem reports the negotiated
// parameters (+FCS/+FDCS), the page results (+FPS/+FPTS) and the reason of
// a hang-up (+FHS/+FHNG), which this package turns into words and failure
// categories.
package class2

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

// Config of a Class 2/2.0 send.
type Config struct {
	Class   string // "2" or "2.0"
	LocalID string
	Fine    bool
	// MR allows 2-D coding (MR, and MMR over ECM); false sends MH.
	MR bool
	// ECM is error correction mode: "auto" or "" (when the modem and the
	// far end offer it), "on" (the same, logged when one of them lacks it),
	// "off".
	ECM string
	// Encoding forces a coding: "mh", "mr", "mmr", or "" for the best both
	// ends take (MMR over ECM, else MR, else MH).
	Encoding string
	// FrameSize is the ECM frame size, 256 (default) or 64.
	FrameSize  int
	RTNRetries int
	FirstPage  int
	Pace       bool
	// Timeout is how long the modem may take for the call set-up and for
	// each page's result (default 90 s).
	Timeout time.Duration
	Log     func(step, detail string)
	// Confirmed is called after the far end confirmed a page, with the
	// page's 1-based number in the whole job.
	Confirmed func(page int)
}

type dialect struct {
	lid, cc, is, bo, dcs, remoteID, dis, pps, hangup string
	// receiving
	tsi, fet, connect string
}

var (
	class2  = dialect{lid: "+FLID", cc: "+FDCC", is: "+FDIS", bo: "+FBOR", dcs: "+FDCS:", remoteID: "+FCSI:", dis: "+FDIS:", pps: "+FPTS:", hangup: "+FHNG:", tsi: "+FTSI:", fet: "+FET:", connect: "+FCON"}
	class20 = dialect{lid: "+FLI", cc: "+FCC", is: "+FIS", bo: "+FBO", dcs: "+FCS:", remoteID: "+FCI:", dis: "+FIS:", pps: "+FPS:", hangup: "+FHS:", tsi: "+FTI:", fet: "+FET:", connect: "+FCO"}
)

func dialectOf(class string) dialect {
	if class == "2" {
		return class2
	}
	return class20
}

// hangups are the Class 2/2.0 hang-up status codes, with a category.
var hangups = map[int]struct{ cat, words string }{
	0:  {"", "normal end of the call"},
	1:  {t30.CatNoAnswer, "ring detected without a successful handshake"},
	2:  {t30.CatCancelled, "call aborted"},
	3:  {t30.CatNoDialtone, "no loop current"},
	4:  {t30.CatNoAnswer, "ringback detected, no answer"},
	5:  {t30.CatNoAnswer, "answered without a fax tone"},
	10: {t30.CatProtocol, "unspecified error while calling"},
	11: {t30.CatNoAnswer, "no fax answered (T1)"},
	20: {t30.CatProtocol, "unspecified error before the first page"},
	21: {t30.CatProtocol, "the remote cannot receive"},
	22: {t30.CatProtocol, "command reception error before the first page"},
	23: {t30.CatProtocol, "invalid command received before the first page"},
	24: {t30.CatProtocol, "response reception error before the first page"},
	25: {t30.CatTraining, "the remote did not answer the DCS"},
	26: {t30.CatProtocol, "DIS received three times: the remote did not recognise the DCS"},
	27: {t30.CatTraining, "failure to train"},
	28: {t30.CatProtocol, "invalid response before the first page"},
	40: {t30.CatProtocol, "unspecified error while sending a page"},
	43: {t30.CatProtocol, "page data underflow"},
	50: {t30.CatProtocol, "unspecified error after a page"},
	51: {t30.CatProtocol, "response reception error after a page"},
	52: {t30.CatProtocol, "no response to MPS (three times)"},
	53: {t30.CatProtocol, "invalid response to MPS"},
	54: {t30.CatProtocol, "no response to EOP (three times)"},
	55: {t30.CatProtocol, "invalid response to EOP"},
	56: {t30.CatProtocol, "no response to EOM (three times)"},
	57: {t30.CatProtocol, "invalid response to EOM"},
	58: {t30.CatHangup, "unable to continue after PIN or PIP"},
	// receiving
	70:  {t30.CatProtocol, "unspecified error while receiving, before the page"},
	71:  {t30.CatProtocol, "response reception error while receiving"},
	72:  {t30.CatProtocol, "command reception error while receiving"},
	73:  {t30.CatProtocol, "the expected page was not received (T2)"},
	74:  {t30.CatProtocol, "no command after EOM (T1)"},
	90:  {t30.CatProtocol, "unspecified error while receiving a page"},
	91:  {t30.CatProtocol, "no end of line within 5 s"},
	92:  {t30.CatProtocol, "bad frame in error correction mode"},
	93:  {t30.CatProtocol, "the modem's receive buffer overflowed"},
	94:  {t30.CatProtocol, "bad frame in error correction mode"},
	100: {t30.CatProtocol, "unspecified error after a received page"},
	101: {t30.CatProtocol, "invalid response received after a page"},
	102: {t30.CatProtocol, "invalid command received after a page"},
	103: {t30.CatHangup, "unable to continue after PIN or PIP"},
}

// hangups20Hex are the Class 2.0 (T.32) codes some modems report in
// hexadecimal for the receive phase D: A0-A3 stand for 100-103.
var hangups20Hex = map[string]int{"A0": 100, "A1": 101, "A2": 102, "A3": 103}

// HangupError decodes a +FHS/+FHNG value ("25", "0") into an error, nil
// for a normal end. The digits mean the same code in both classes.
func HangupError(value string) error {
	v := strings.TrimSpace(value)
	n, err := strconv.Atoi(v)
	if h, ok := hangups20Hex[strings.ToUpper(v)]; ok {
		n, err = h, nil
	}
	if err != nil {
		return &t30.Error{Category: t30.CatProtocol, Reason: "hang-up status " + v}
	}
	h, ok := hangups[n]
	if !ok {
		cat := t30.CatProtocol
		return &t30.Error{Category: cat, Reason: fmt.Sprintf("hang-up status %s", v)}
	}
	if h.cat == "" {
		return nil
	}
	return &t30.Error{Category: h.cat, Reason: fmt.Sprintf("%s (hang-up status %s)", h.words, v)}
}

var bitRates = []int{2400, 4800, 7200, 9600, 12000, 14400}
var scanTimes = []int{0, 5, 10, 10, 20, 20, 40, 40}

// Data format (df) and error correction (ec) codes of +FCC, +FIS, +FCS.
const (
	dfMH, dfMR, dfMMR = 0, 1, 3
	ec64, ec256       = 1, 2
)

// Ranges are the values a modem takes for each +FCC parameter, as it
// answers AT+FCC=? ("(0,1),(0-5),(0-2),(0-2),(0-3),(0-2),(0),(0-7)").
type Ranges [][]int

// ParseRanges decodes the answer to AT+FCC=? (or AT+FDCC=?).
func ParseRanges(v string) (Ranges, error) {
	var out Ranges
	v = strings.TrimSpace(v)
	for v != "" {
		var item string
		if v[0] == '(' {
			end := strings.IndexByte(v, ')')
			if end < 0 {
				return nil, fmt.Errorf("class2: capability ranges %q", v)
			}
			item, v = v[1:end], v[end+1:]
		} else {
			end := strings.IndexByte(v, ',')
			if end < 0 {
				end = len(v)
			}
			item, v = v[:end], v[end:]
		}
		v = strings.TrimPrefix(strings.TrimSpace(v), ",")
		var vals []int
		for _, part := range strings.Split(item, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			lo, hi, isRange := strings.Cut(part, "-")
			a, err := strconv.ParseInt(strings.TrimSpace(lo), 16, 32)
			if err != nil {
				return nil, fmt.Errorf("class2: capability ranges: %q: %w", part, err)
			}
			b := a
			if isRange {
				if b, err = strconv.ParseInt(strings.TrimSpace(hi), 16, 32); err != nil || b < a || b-a > 64 {
					return nil, fmt.Errorf("class2: capability ranges: %q", part)
				}
			}
			for x := a; x <= b; x++ {
				vals = append(vals, int(x))
			}
		}
		out = append(out, vals)
	}
	return out, nil
}

// Has reports whether parameter i (0: vr, 4: df, 5: ec) takes value x. A
// modem that did not answer the query is taken to offer MH and MR without
// ECM.
func (r Ranges) Has(i, x int) bool {
	if r == nil {
		return i == 4 && x <= dfMR || i == 5 && x == 0
	}
	if i >= len(r) {
		return x == 0
	}
	for _, v := range r[i] {
		if v == x {
			return true
		}
	}
	return false
}

// choice is the data format and error correction the host asks for.
type choice struct{ df, ec int }

// choose picks df and ec within what the modem takes (r), what the far end
// announced (remote, nil before the call) and the config.
func choose(cfg Config, r Ranges, remote *t30.Caps, log func(string, string)) choice {
	ecm := strings.ToLower(cfg.ECM)
	enc := strings.ToLower(cfg.Encoding)
	c := choice{}
	if ecm != "off" {
		c.ec = ec256
		if cfg.FrameSize == 64 {
			c.ec = ec64
		}
		switch {
		case !r.Has(5, c.ec) && r.Has(5, ec64+ec256-c.ec):
			c.ec = ec64 + ec256 - c.ec // the other frame size
		case !r.Has(5, c.ec):
			c.ec = 0
			if ecm == "on" {
				log("ecm", "the modem does not offer ECM: sending without it")
			}
		}
		if c.ec != 0 && remote != nil && !remote.ECM {
			c.ec = 0
			if ecm == "on" {
				log("ecm", "the far end does not offer ECM: sending without it")
			}
		}
	}
	mr := cfg.MR && enc != "mh" && r.Has(4, dfMR) && (remote == nil || remote.MR)
	mmr := cfg.MR && (enc == "" || enc == "mmr") && c.ec != 0 && r.Has(4, dfMMR) && (remote == nil || remote.MMR)
	switch {
	case mmr:
		c.df = dfMMR
	case mr:
		c.df = dfMR
	}
	if enc == "mmr" && !mmr {
		log("encoding", "the modem or the far end does not take MMR over ECM: sending MR or MH")
	}
	return c
}

// remoteCaps reads a +FIS/+FDIS report of the far end's DIS.
func remoteCaps(v string) *t30.Caps {
	f := strings.Split(strings.TrimSpace(v), ",")
	num := func(i int) int {
		if i >= len(f) {
			return 0
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(f[i]), 16, 32)
		return int(n)
	}
	df, ec := num(4), num(5)
	return &t30.Caps{Fine: num(0) != 0, MR: df >= dfMR, MMR: df >= dfMMR, ECM: ec != 0}
}

// ParseParams decodes +FCS/+FDCS "vr,br,wd,ln,df,ec,bf,st".
func ParseParams(v string) (t30.Params, error) {
	f := strings.Split(strings.TrimSpace(v), ",")
	if len(f) < 5 {
		return t30.Params{}, fmt.Errorf("class2: session parameters %q", v)
	}
	num := func(i int) int {
		if i >= len(f) {
			return 0
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(f[i]), 16, 32)
		return int(n)
	}
	var p t30.Params
	br := num(1)
	if br < 0 || br >= len(bitRates) {
		return p, fmt.Errorf("class2: bit rate code %d", br)
	}
	for _, s := range t30.Speeds {
		if s.Bits == bitRates[br] {
			p.Speed = s
			break
		}
	}
	p.Fine = num(0) != 0
	switch ec := num(5); ec {
	case 0:
	case 1:
		p.ECM, p.FrameSize = true, 64
	case 2:
		p.ECM, p.FrameSize = true, 256
	default:
		return p, fmt.Errorf("class2: error correction code %d", ec)
	}
	switch df := num(4); df {
	case 0:
	case 1:
		p.MR = true
	case 3:
		if !p.ECM {
			return p, fmt.Errorf("class2: data format %d (MMR needs ECM)", df)
		}
		p.MMR = true
	default:
		return p, fmt.Errorf("class2: data format %d", df)
	}
	if st := num(7); st >= 0 && st < len(scanTimes) {
		p.MinScan = scanTimes[st]
		if p.Fine && (st == 2 || st == 4 || st == 6) {
			p.MinScan /= 2
		}
	}
	return p, nil
}

// sessionSetup is the commands that set the local id and the session
// parameters (resolution, 2D coding, ECM) both ways of a call share.
func (d dialect) sessionSetup(localID string, fine bool, c choice) []string {
	vr := 0
	if fine {
		vr = 1
	}
	return []string{
		fmt.Sprintf(`%s="%s"`, d.lid, strings.ReplaceAll(localID, `"`, "")),
		fmt.Sprintf("%s=%d,5,0,2,%d,%d,0,0", d.cc, vr, c.df, c.ec),
		d.bo + "=0", // direct bit order: the first pel in the lowest bit
	}
}

// queryRanges asks the modem which +FCC values it takes; nil when it
// does not say (MH and MR without ECM are then assumed).
func queryRanges(ctx context.Context, ch *at.Channel, d dialect, log func(string, string)) Ranges {
	r, err := ch.Command(ctx, d.cc+"=?", 5*time.Second)
	if err != nil || !r.OK() {
		return nil
	}
	for _, l := range r.Lines {
		l = strings.TrimSpace(strings.TrimPrefix(l, d.cc+":"))
		if !strings.HasPrefix(l, "(") {
			continue
		}
		rg, err := ParseRanges(l)
		if err != nil {
			log("capabilities", err.Error())
			return nil
		}
		log("capabilities", l)
		return rg
	}
	return nil
}

// Send dials and sends pages[cfg.FirstPage:] through a modem already set to
// AT+FCLASS=2 or 2.0.
func Send(ctx context.Context, ch *at.Channel, dial string, pages []t30.Page, cfg Config) (t30.Result, error) {
	var res t30.Result
	if cfg.Timeout == 0 {
		cfg.Timeout = 90 * time.Second
	}
	log := cfg.Log
	if log == nil {
		log = func(string, string) {}
	}
	d := class20
	if cfg.Class == "2" {
		d = class2
	}
	start := time.Now()
	defer func() {
		res.Duration = time.Since(start)
		hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ch.Command(hctx, "H0", 3*time.Second) //nolint:errcheck // best effort
		cancel()
	}()
	fail := func(err error) (t30.Result, error) {
		var e *t30.Error
		if !errors.As(err, &e) {
			e = &t30.Error{Category: t30.CatModem, Reason: "the modem stopped answering", Err: err}
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				e.Category, e.Reason = t30.CatCancelled, "stopped"
			}
		}
		e.Confirmed = res.Pages
		return res, e
	}
	ranges := queryRanges(ctx, ch, d, log)
	want := choose(cfg, ranges, nil, func(string, string) {})
	for _, c := range d.sessionSetup(cfg.LocalID, cfg.Fine, want) {
		r, err := ch.Command(ctx, c, 5*time.Second)
		if err != nil {
			return fail(err)
		}
		if !r.OK() {
			return fail(&t30.Error{Category: t30.CatModem, Reason: "AT" + c + ": " + r.Result})
		}
	}
	// checkHangup turns a reported +FHS/+FHNG into an error.
	checkHangup := func(r at.Response) error {
		if v, ok := r.Value(d.hangup); ok {
			return HangupError(v)
		}
		return nil
	}
	log("dial", dial)
	r, err := ch.Command(ctx, "D"+dial, cfg.Timeout)
	if err != nil {
		if errors.Is(err, at.ErrTimeout) {
			return fail(&t30.Error{Category: t30.CatNoAnswer, Reason: "no answer to the call", Err: err})
		}
		return fail(err)
	}
	if err := checkHangup(r); err != nil {
		return fail(err)
	}
	switch r.Result {
	case "OK":
	case "BUSY":
		return fail(&t30.Error{Category: t30.CatBusy, Reason: "line busy"})
	case "NO DIALTONE", "NO DIAL TONE":
		return fail(&t30.Error{Category: t30.CatNoDialtone, Reason: "no dial tone"})
	case "NO ANSWER":
		return fail(&t30.Error{Category: t30.CatNoAnswer, Reason: "no answer"})
	case "NO CARRIER":
		return fail(&t30.Error{Category: t30.CatNoCarrier, Reason: "no fax answered the call"})
	default:
		return fail(&t30.Error{Category: t30.CatProtocol, Reason: "dial: " + r.Result})
	}
	if v, ok := r.Value(d.remoteID); ok {
		res.RemoteID = strings.Trim(v, `" `)
	}
	if v, ok := r.Value(d.dis); ok {
		log("dis", v)
		// The session's parameters within what the far end takes: the
		// modem then sends the DCS the host chose.
		far := remoteCaps(v)
		c := choose(cfg, ranges, far, log)
		fine := 0
		if cfg.Fine && far.Fine {
			fine = 1
		}
		if c != want || (fine == 1) != cfg.Fine {
			is := fmt.Sprintf("%s=%d,5,0,2,%d,%d,0,0", d.is, fine, c.df, c.ec)
			if r, err := ch.Command(ctx, is, 5*time.Second); err != nil {
				return fail(err)
			} else if !r.OK() {
				log("session", "AT"+is+": "+r.Result+": the modem chooses")
			}
		}
	}
	rtn := 0
	for i := cfg.FirstPage; i < len(pages); {
		r, err := ch.Command(ctx, "+FDT", cfg.Timeout)
		if err != nil {
			return fail(err)
		}
		if err := checkHangup(r); err != nil {
			return fail(err)
		}
		if !r.Connect() {
			return fail(&t30.Error{Category: t30.CatProtocol, Reason: "AT+FDT: " + r.Result})
		}
		if v, ok := r.Value(d.dcs); ok {
			p, err := ParseParams(v)
			if err != nil {
				return fail(&t30.Error{Category: t30.CatProtocol, Reason: err.Error()})
			}
			res.Params = p
			log("dcs", p.String())
		}
		if res.Params.Speed.Bits == 0 {
			return fail(&t30.Error{Category: t30.CatProtocol, Reason: "the modem reported no session parameters"})
		}
		if cfg.Class == "2" {
			// Class 2: the modem signals with XON that it takes data.
			if err := ch.WaitByte(ctx, at.XON, 5*time.Second); err != nil {
				return fail(err)
			}
		}
		data, err := pages[i].Encode(res.Params)
		if err != nil {
			return fail(&t30.Error{Category: t30.CatProtocol, Reason: fmt.Sprintf("encoding page %d", i+1), Err: err})
		}
		log("page", fmt.Sprintf("%d: %d bytes at %s", i+1, len(data), res.Params.Speed))
		rate := 0
		if cfg.Pace {
			rate = res.Params.Speed.Bits
		}
		if err := ch.WriteData(ctx, data, rate, 2*time.Second); err != nil {
			return fail(err)
		}
		if r, err := ch.ReadResult(ctx, cfg.Timeout); err != nil {
			return fail(err)
		} else if !r.OK() {
			if err := checkHangup(r); err != nil {
				return fail(err)
			}
			return fail(&t30.Error{Category: t30.CatProtocol, Reason: "page data: " + r.Result})
		}
		fet := 0 // MPS
		if i == len(pages)-1 {
			fet = 2 // EOP
		}
		r, err = ch.Command(ctx, fmt.Sprintf("+FET=%d", fet), cfg.Timeout)
		if err != nil {
			return fail(err)
		}
		pps, _ := r.Value(d.pps)
		status, _ := strconv.Atoi(strings.SplitN(pps, ",", 2)[0])
		log("pps", pps)
		if status == 2 && res.Params.ECM {
			// With ECM the modem resent the frames in error itself; RTN
			// means the far end gave up on the page (four PPRs, then EOR
			// answered ERR): sending it again would fail the same way.
			if err := checkHangup(r); err != nil {
				return fail(err)
			}
			return fail(&t30.Error{Category: t30.CatRejected, Reason: fmt.Sprintf("page %d not received in error correction mode", i+1)})
		}
		switch status {
		case 1, 3, 5: // MCF, RTP, PIP: the page was received
			res.Pages++
			i++
			rtn = 0
			if cfg.Confirmed != nil {
				cfg.Confirmed(i)
			}
			if status == 5 {
				return fail(&t30.Error{Category: t30.CatHangup, Reason: "the far end interrupted the call (PIP)"})
			}
		case 2, 4: // RTN, PIN
			if status == 4 || rtn >= cfg.RTNRetries {
				return fail(&t30.Error{Category: t30.CatRejected, Reason: fmt.Sprintf("page %d rejected by the far end", i+1)})
			}
			rtn++
		default:
			if err := checkHangup(r); err != nil {
				return fail(err)
			}
			return fail(&t30.Error{Category: t30.CatProtocol, Reason: fmt.Sprintf("no page result after page %d (%s)", i+1, r.Result)})
		}
		if err := checkHangup(r); err != nil {
			return fail(err)
		}
	}
	log("done", fmt.Sprintf("%d pages confirmed", res.Pages))
	return res, nil
}
