package faxline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"

	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// rxPage is a page our test receiver got, decoded.
type rxPage struct {
	params t30.Params
	rows   [][]byte
	err    error
}

// class1Receive answers one call on a Class 1 modem and receives pages as
// a T.30 called terminal offering MR, decoding each page with t4. efax
// decodes 1-D only, so MR on the real line is checked with this receiver.
func class1Receive(ctx context.Context, ch *at.Channel, log func(string)) ([]rxPage, error) {
	cmd := func(c string, d time.Duration) (at.Response, error) { return ch.Command(ctx, c, d) }
	// As efax does: no ATZ, auto-answer on the first ring.
	for _, c := range []string{"E0V1Q0", "+FCLASS=1", "S0=1"} {
		if r, err := cmd(c, 3*time.Second); err != nil || !r.OK() {
			return nil, fmt.Errorf("AT%s: %v %v", c, r, err)
		}
	}
	for {
		l, err := ch.ReadLine(ctx, 60*time.Second)
		if err != nil {
			return nil, fmt.Errorf("waiting for the call: %w", err)
		}
		log("< " + l)
		if strings.HasPrefix(l, "CONNECT") {
			break
		}
	}
	caps := t30.Caps{CanReceive: true, V17: true, V29: true, V27ter: true, Fine: true, MR: true}
	sendFrames := func(frames ...t30.Frame) error {
		for i, f := range frames {
			f.Final = i == len(frames)-1
			log("tx " + f.String())
			if err := ch.WriteData(ctx, f.Marshal(), 0, 0); err != nil {
				return err
			}
			r, err := ch.ReadResult(ctx, 10*time.Second)
			if err != nil {
				return err
			}
			if f.Final != r.OK() {
				return fmt.Errorf("after %s: %s", f, r.Result)
			}
		}
		return nil
	}
	transmit := func(frames ...t30.Frame) error {
		if r, err := cmd("+FRS=8", 3*time.Second); err != nil || !r.OK() {
			return fmt.Errorf("+FRS: %v %v", r, err)
		}
		r, err := cmd("+FTH=3", 5*time.Second)
		if err != nil || !r.Connect() {
			return fmt.Errorf("+FTH=3: %v %v", r, err)
		}
		return sendFrames(frames...)
	}
	receive := func(wait time.Duration) (t30.Frame, error) {
		if err := ch.Send("+FRH=3"); err != nil {
			return t30.Frame{}, err
		}
		r, err := ch.ReadResult(ctx, wait)
		if errors.Is(err, at.ErrTimeout) {
			ch.Abort(ctx, time.Second)
			return t30.Frame{}, err
		}
		if err != nil || !r.Connect() {
			return t30.Frame{}, fmt.Errorf("+FRH=3: %v %v", r, err)
		}
		data, err := ch.ReadData(ctx, 5*time.Second)
		if err != nil {
			return t30.Frame{}, err
		}
		if r, err := ch.ReadResult(ctx, 2*time.Second); err != nil || !r.OK() {
			return t30.Frame{}, fmt.Errorf("frame: %v %v", r, err)
		}
		f, err := t30.Parse(data)
		if err == nil {
			log("rx " + f.String())
		}
		return f, err
	}
	receiveData := func(code int) ([]byte, error) {
		r, err := cmd(fmt.Sprintf("+FRM=%d", code), 10*time.Second)
		if err != nil || !r.Connect() {
			return nil, fmt.Errorf("+FRM=%d: %v %v", code, r, err)
		}
		data, err := ch.ReadData(ctx, 5*time.Minute)
		if err != nil {
			return nil, err
		}
		ch.ReadResult(ctx, 2*time.Second) //nolint:errcheck // NO CARRIER
		return data, nil
	}
	idFrames := []t30.Frame{{FCF: t30.CSI, Info: t30.EncodeID("+1 555 0002")}, {FCF: t30.DIS, Info: caps.Bytes()}}
	if err := sendFrames(idFrames...); err != nil {
		return nil, err
	}
	var pages []rxPage
	var params t30.Params
	recvPage := func() error {
		data, err := receiveData(params.Speed.DataCode)
		if err != nil {
			return err
		}
		o := t4.Options{Encoding: t4.MH, LSBFirst: true}
		if params.MR {
			o.Encoding, o.K = t4.MR, params.K()
		}
		rows, derr := t4.DecodePage(bytes.NewReader(data), width, o, 10000)
		pages = append(pages, rxPage{params: params, rows: rows, err: derr})
		log(fmt.Sprintf("page %d: %d bytes, %d rows, %v", len(pages), len(data), len(rows), derr))
		return nil
	}
	for {
		f, err := receive(6 * time.Second)
		if err != nil {
			if errors.Is(err, at.ErrTimeout) && params.Speed.Bits == 0 {
				if err := transmit(idFrames...); err != nil {
					return pages, err
				}
				continue
			}
			return pages, err
		}
		switch t30.Code(f.FCF) {
		case t30.DCS:
			params, err = t30.ParseDCS(f.Info)
			if err != nil {
				return pages, err
			}
			tcf, err := receiveData(params.Speed.TrainCode)
			if err != nil {
				return pages, err
			}
			zeros := bytes.Count(tcf, []byte{0})
			log(fmt.Sprintf("tcf %d bytes, %d zeros", len(tcf), zeros))
			if zeros < params.Speed.Bits/8 {
				if err := transmit(t30.Frame{FCF: t30.FTT}); err != nil {
					return pages, err
				}
				continue
			}
			if err := transmit(t30.Frame{FCF: t30.CFR}); err != nil {
				return pages, err
			}
			if err := recvPage(); err != nil {
				return pages, err
			}
		case t30.MPS, t30.EOP:
			if err := transmit(t30.Frame{FCF: t30.MCF}); err != nil {
				return pages, err
			}
			if t30.Code(f.FCF) == t30.MPS {
				if err := recvPage(); err != nil {
					return pages, err
				}
			}
		case t30.DCN:
			cmd("H0", 3*time.Second) //nolint:errcheck
			return pages, nil
		default:
			if strings.HasPrefix(t30.Name(f.FCF), "FCF") {
				return pages, fmt.Errorf("unexpected %s", f)
			}
		}
	}
}

// TestRealLineMR sends MR pages over the real line to a Class 1 receiver
// built on this project's T.30 frames and t4 decoder (efax decodes 1-D
// only), at V.17 fine, V.29 standard and V.27ter fine.
func TestRealLineMR(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	for i, c := range []call{
		{"V.17 MR fine 2 pages", t30.V17, true, true, 2, 50},
		{"V.29 MR standard", t30.V29, true, false, 1, 40},
		{"V.27ter MR fine", t30.V27ter, true, true, 1, 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			line, err := Start(ctx, filepath.Join(shortDir(t), "line"))
			if err != nil {
				t.Fatal(err)
			}
			defer line.Close()
			time.Sleep(2 * time.Second) // a just-started iaxmodem answers "NO DIALTONE" for a moment
			rxch, err := at.Open(line.DevB, 115200, at.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer rxch.Close()
			var rxlog strings.Builder
			type result struct {
				pages []rxPage
				err   error
			}
			done := make(chan result, 1)
			go func() {
				p, err := class1Receive(ctx, rxch, func(s string) { fmt.Fprintf(&rxlog, "%s %s\n", time.Now().Format("15:04:05.000"), s) })
				done <- result{p, err}
			}()
			time.Sleep(500 * time.Millisecond)
			ch, err := at.Open(line.DevA, 115200, at.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			if err := initModem(ctx, ch); err != nil {
				t.Fatal(err)
			}
			var want [][][]byte
			for p := 0; p < c.pages; p++ {
				want = append(want, testPage(c.height, 20+i*3+p))
			}
			var txlog strings.Builder
			cfg := t30.Config{LocalID: "+1 555 0001", Fine: c.fine, MR: c.mr, Modulations: []string{c.mod}, Pace: true,
				Log: func(step, d string) { fmt.Fprintf(&txlog, "%s [%s] %s\n", time.Now().Format("15:04:05.000"), step, d) }}
			res, err := t30.Send(ctx, ch, line.NumB, encodePages(want), cfg)
			rx := <-done
			if err != nil || rx.err != nil {
				t.Fatalf("send: %v, receive: %v\nsender:\n%s\nreceiver:\n%s", err, rx.err, txlog.String(), rxlog.String())
			}
			if !res.Params.MR || res.Params.Fine != c.fine || res.Params.Speed.Modulation != c.mod {
				t.Errorf("negotiated %v", res.Params)
			}
			if len(rx.pages) != c.pages {
				t.Fatalf("received %d pages, want %d", len(rx.pages), c.pages)
			}
			for p, got := range rx.pages {
				if got.err != nil {
					t.Fatalf("page %d: %v", p+1, got.err)
				}
				if len(got.rows) != len(want[p]) {
					t.Fatalf("page %d: %d rows, want %d", p+1, len(got.rows), len(want[p]))
				}
				for y := range got.rows {
					if !bytes.Equal(got.rows[y], want[p][y]) {
						t.Fatalf("page %d row %d differs", p+1, y)
					}
				}
			}
			t.Logf("%s: %d MR pages pixel-identical at %s", c.name, len(rx.pages), res.Params)
		})
	}
}

// shortDir is a temporary directory with a short path: iaxmodem truncates
// long device paths.
func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "fl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
