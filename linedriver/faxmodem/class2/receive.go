package class2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// ReceiveConfig configures Receive.
type ReceiveConfig struct {
	Class   string // "2" or "2.0"
	LocalID string // CSI, 20 characters at most
	// Fine offers fine resolution (the far end chooses).
	Fine bool
	// ECM is error correction mode: "auto", "" or "on" offer it when the
	// modem has it, "off" does not.
	ECM string
	// Encoding is the best coding offered: "" or "mmr" (MMR with ECM, else
	// MR), "mr", or "mh".
	Encoding string
	// FrameSize is the ECM frame size offered, 256 (default) or 64.
	FrameSize int
	// Timeout is how long the modem may take to answer, and for each page
	// (default 90 s).
	Timeout time.Duration
	// MaxRefused is how many times in a row a page may be refused (RTN)
	// before the call is ended (default 3).
	MaxRefused int
	// DataTrigger is the character that releases the page data after
	// AT+FDR's CONNECT: 0 picks DC1 for Class 2 (SP-2388-A) and DC2 for
	// Class 2.0; some Class 2 modems (ZyXEL, Rockwell RC32ACL) want DC2.
	DataTrigger byte
	// Log gets each step, as Config.Log does.
	Log func(step, detail string)
}

// ErrRefused is the end of a call whose last page was refused (the
// decoder or Inbound.Page failed) and not sent again.
var ErrRefused = errors.New("class2: a page was refused and not sent again")

// Receive answers a ringing line on a modem set to AT+FCLASS=2 or 2.0 and
// receives one fax: +FCR=1, +FLI, +FCC, +FBO=0, then ATA → +FCO, +FTI/+FTSI
// (the far end's id), +FCS/+FDCS; in.Begin; then for each page AT+FDR →
// CONNECT, DC1 (Class 2) or DC2 (2.0), page data to DLE ETX → +FPS/+FPTS and +FET (the far end's
// post-page message), the page decoded with t4 and handed to in.Page, and
// the verdict set with AT+FPS=1 (MCF) only after in.Page returned nil, else
// AT+FPS=2 (RTN); after EOP the last AT+FDR ends with +FHS:00. in.End is
// called once Begin succeeded (with a context that outlives ctx by up to
// 30 s), with nil when the far end ended the document properly. call is
// filled in (RemoteID, Params, Log) as the call goes; the caller sets ID,
// Driver, Device, Started and the numbers it knows, and may have started
// call.Log (rings, caller id): Receive appends to it.
//
// The modem is hung up (ATH0) before Receive returns. The error is a
// *t30.Error with a category (a hang-up status in words), ErrRefused, or
// what Begin or End returned.
func Receive(ctx context.Context, ch *at.Channel, cfg ReceiveConfig, call *linedriver.Call, in linedriver.Inbound) error {
	if cfg.Timeout == 0 {
		cfg.Timeout = 90 * time.Second
	}
	if cfg.MaxRefused == 0 {
		cfg.MaxRefused = 3
	}
	d := dialectOf(cfg.Class)
	trigger := cfg.DataTrigger
	if trigger == 0 {
		trigger = dc2
		if cfg.Class == "2" {
			trigger = dc1
		}
	}
	var logb strings.Builder
	logb.WriteString(call.Log) // what the caller logged before (rings, caller id)
	log := func(step, detail string) {
		fmt.Fprintf(&logb, "%s [%s] %s\n", time.Now().Format("15:04:05.000"), step, detail)
		call.Log = logb.String()
		if cfg.Log != nil {
			cfg.Log(step, detail)
		}
	}
	defer func() {
		hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ch.Command(hctx, "H0", 3*time.Second) //nolint:errcheck // best effort
		cancel()
	}()
	modemErr := func(err error) error {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &t30.Error{Category: t30.CatCancelled, Reason: "stopped", Err: err}
		}
		return &t30.Error{Category: t30.CatModem, Reason: "the modem stopped answering", Err: err}
	}

	// What we offer.
	ranges := queryRanges(ctx, ch, d, log)
	offer := choose(Config{MR: !strings.EqualFold(cfg.Encoding, "mh"), ECM: cfg.ECM, Encoding: cfg.Encoding, FrameSize: cfg.FrameSize}, ranges, nil, func(string, string) {})
	setup := append([]string{"+FCR=1"}, d.sessionSetup(cfg.LocalID, cfg.Fine, offer)...)
	for _, c := range setup {
		r, err := ch.Command(ctx, c, 5*time.Second)
		if err != nil {
			return modemErr(err)
		}
		if !r.OK() {
			return &t30.Error{Category: t30.CatModem, Reason: "AT" + c + ": " + r.Result}
		}
	}

	log("answer", "ATA")
	r, err := ch.Command(ctx, "A", cfg.Timeout)
	if err != nil {
		if errors.Is(err, at.ErrTimeout) {
			return &t30.Error{Category: t30.CatNoAnswer, Reason: "no fax called", Err: err}
		}
		return modemErr(err)
	}
	if v, ok := r.Value(d.hangup); ok {
		if err := HangupError(v); err != nil {
			return err
		}
	}
	if !r.OK() {
		return &t30.Error{Category: t30.CatNoCarrier, Reason: "answer: " + r.Result}
	}
	if v, ok := r.Value(d.tsi); ok {
		call.RemoteID = strings.Trim(v, `" `)
		log("tsi", call.RemoteID)
	}
	var params t30.Params
	width := 1728
	setParams := func(r at.Response) error {
		v, ok := r.Value(d.dcs)
		if !ok {
			return nil
		}
		p, err := ParseParams(v)
		if err != nil {
			return &t30.Error{Category: t30.CatProtocol, Reason: err.Error()}
		}
		params, width = p, pageWidth(v)
		call.Params = p.String()
		log("dcs", call.Params)
		return nil
	}
	if err := setParams(r); err != nil {
		return err
	}
	// AT+FKS (AT+FK in Class 2) ends the session: DCN to the far end.
	abortCmd := "+FKS"
	if cfg.Class == "2" {
		abortCmd = "+FK"
	}
	if err := in.Begin(ctx, call); err != nil {
		log("refused", err.Error())
		ch.Command(ctx, abortCmd, 10*time.Second) //nolint:errcheck // hung up below
		return fmt.Errorf("class2: call refused: %w", err)
	}

	// From here on End is called once.
	n := 0         // pages stored
	refused := 0   // pages refused in a row
	lastFET := -1  // the far end's last post-page message
	verdict := "1" // the verdict on the last page
	end := func(cause error) error {
		if cause == nil && verdict != "1" {
			cause = ErrRefused
		}
		if cause != nil {
			log("end", cause.Error())
		} else {
			log("end", fmt.Sprintf("%d pages", n))
		}
		// End gets a context of its own: the call's may be over (the
		// gateway stopping), and what was received must still be kept.
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := in.End(ectx, call, cause); err != nil {
			if cause != nil {
				return errors.Join(cause, err)
			}
			return fmt.Errorf("class2: end of call: %w", err)
		}
		return cause
	}
	ppsCmd := strings.TrimSuffix(d.pps, ":") + "="
	abort := func(reason string) error {
		ch.Command(ctx, abortCmd, 10*time.Second) //nolint:errcheck // hung up below
		return &t30.Error{Category: t30.CatProtocol, Reason: reason}
	}
	for {
		r, err := ch.Command(ctx, "+FDR", cfg.Timeout)
		if err != nil {
			return end(modemErr(err))
		}
		if err := setParams(r); err != nil {
			return end(err)
		}
		if v, ok := r.Value(d.hangup); ok {
			err := HangupError(v)
			if err == nil && lastFET != 2 {
				err = &t30.Error{Category: t30.CatHangup, Reason: "the far end ended the call before the end of the document"}
			}
			return end(err)
		}
		if !r.Connect() {
			return end(&t30.Error{Category: t30.CatProtocol, Reason: "AT+FDR: " + r.Result})
		}
		if params.Speed.Bits == 0 {
			return end(&t30.Error{Category: t30.CatProtocol, Reason: "the modem reported no session parameters"})
		}
		// DC1 / DC2: the host is ready for the page data.
		if err := ch.Write([]byte{trigger}); err != nil {
			return end(modemErr(err))
		}
		data, err := ch.ReadData(ctx, cfg.Timeout)
		if err != nil {
			return end(modemErr(err))
		}
		r, err = ch.ReadResult(ctx, cfg.Timeout)
		if err != nil {
			return end(modemErr(err))
		}
		if v, ok := r.Value(d.hangup); ok {
			if err := HangupError(v); err != nil {
				return end(err)
			}
		}
		quality, _ := r.Value(d.pps)
		fet := -1
		if v, ok := r.Value(d.fet); ok {
			fet, _ = strconv.Atoi(strings.TrimSpace(v))
			fet %= 3 // PRI-MPS, PRI-EOM, PRI-EOP are answered alike
		}
		if fet < 0 {
			return end(&t30.Error{Category: t30.CatProtocol, Reason: fmt.Sprintf("no post-page message after page %d (%s)", n+1, r.Result)})
		}
		lastFET = fet
		log("page", fmt.Sprintf("%d: %d bytes, modem's verdict %q, post-page %s", n+1, len(data), quality, []string{"MPS", "EOM", "EOP"}[fet]))
		page, derr := decodePage(data, width, params)
		switch {
		case derr != nil:
			log("page", fmt.Sprintf("%d: undecodable: %v", n+1, derr))
			verdict = "2"
		default:
			if perr := in.Page(ctx, call, n+1, page); perr != nil {
				log("page", fmt.Sprintf("%d: not stored: %v", n+1, perr))
				verdict = "2"
			} else {
				n++
				verdict = "1"
			}
		}
		if verdict == "1" {
			refused = 0
		} else if refused++; refused >= cfg.MaxRefused {
			return end(abort(fmt.Sprintf("page %d refused %d times", n+1, refused)))
		}
		if r, err := ch.Command(ctx, ppsCmd+verdict, 10*time.Second); err != nil {
			return end(modemErr(err))
		} else if !r.OK() {
			return end(&t30.Error{Category: t30.CatProtocol, Reason: "AT" + ppsCmd + verdict + ": " + r.Result})
		}
		log("verdict", map[string]string{"1": "MCF", "2": "RTN"}[verdict])
	}
}

// pageWidth reads the width code of a +FCS report: 1728, 2048 or 2432 pels.
func pageWidth(fcs string) int {
	f := strings.Split(fcs, ",")
	if len(f) > 2 {
		switch strings.TrimSpace(f[2]) {
		case "1":
			return 2048
		case "2":
			return 2432
		}
	}
	return 1728
}

// maxRows bounds a received page: an unlimited-length page at fine
// resolution is long, but not endless.
const maxRows = 16384

// decodePage decodes page data coded as p in direct bit order.
func decodePage(data []byte, width int, p t30.Params) (*linedriver.InboundPage, error) {
	o := t4.Options{Encoding: t4.MH, LSBFirst: true}
	switch {
	case p.MMR:
		o.Encoding = t4.MMR
	case p.MR:
		o.Encoding, o.K = t4.MR, p.K()
	}
	rows, err := t4.DecodePage(bytes.NewReader(data), width, o, maxRows)
	if err != nil {
		return nil, fmt.Errorf("class2: page data: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("class2: page data: no rows")
	}
	pg := &linedriver.InboundPage{Width: width, Height: len(rows), XRes: 204, YRes: 98, Rows: rows}
	if p.Fine {
		pg.YRes = 196
	}
	return pg, nil
}

// The characters a host sends after AT+FDR's CONNECT when it is ready for
// the page data: DC1 in Class 2 (SP-2388-A), DC2 in Class 2.0.
const (
	dc1 = 0x11
	dc2 = 0x12
)
