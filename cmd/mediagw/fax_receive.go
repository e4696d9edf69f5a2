package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"time"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxpdf"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

func init() {
	register(command{
		Name:  "fax receive",
		Usage: "--device DEV [--class auto|1|1.0|2|2.0] [--rings N] [--out DIR] [-v]",
		Short: "answer one call on a fax modem and write the fax as TIFF and PDF, printing each T.30 step with -v",
		Run:   runFaxReceive,
	})
}

// fileInbound keeps the pages of the call and writes them when it ends.
type fileInbound struct {
	mu    sync.Mutex
	call  *linedriver.Call
	pages []*render.Page
}

func (f *fileInbound) Begin(_ context.Context, c *linedriver.Call) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call = c
	return nil
}

func (f *fileInbound) Page(_ context.Context, _ *linedriver.Call, n int, p *linedriver.InboundPage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n != len(f.pages)+1 {
		return fmt.Errorf("fax receive: page %d after %d", n, len(f.pages))
	}
	res := render.Standard
	if p.YRes > 150 {
		res = render.Fine
	}
	pg := render.NewPage(p.Width, p.Height, res)
	for y, r := range p.Rows {
		copy(pg.Row(y), r)
	}
	f.pages = append(f.pages, pg)
	return nil
}

func (f *fileInbound) End(_ context.Context, c *linedriver.Call, _ error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call = c
	return nil
}

// write stores the pages as dir/ID.tif (TIFF Class F, MH) and dir/ID.pdf.
func (f *fileInbound) write(dir string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pages) == 0 {
		return nil, nil
	}
	base := filepath.Join(dir, f.call.ID)
	var tb bytes.Buffer
	w := faxtiff.NewWriter(&tb, faxtiff.Options{Encoding: t4.MH})
	for _, p := range f.pages {
		if err := w.WritePage(p.Bitmap()); err != nil {
			return nil, fmt.Errorf("TIFF: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("TIFF: %w", err)
	}
	var pb bytes.Buffer
	if err := faxpdf.Write(&pb, f.pages); err != nil {
		return nil, fmt.Errorf("PDF: %w", err)
	}
	if err := os.WriteFile(base+".tif", tb.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(base+".pdf", pb.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return []string{base + ".tif", base + ".pdf"}, nil
}

func runFaxReceive(args []string, std stdio) int {
	fs := flag.NewFlagSet("fax receive", flag.ContinueOnError)
	device := fs.String("device", "", "serial device of the fax modem (e.g. /dev/ttyUSB0)")
	class := fs.String("class", "auto", "fax class: auto, 1, 1.0, 2 or 2.0")
	rings := fs.Int("rings", 2, "answer after this many rings")
	out := fs.String("out", ".", "directory for the received fax (CALL.tif and CALL.pdf)")
	id := fs.String("id", "", "local identification sent as CSI (up to 20 characters)")
	resolution := fs.String("resolution", "fine", "offer fine (and standard) or standard only")
	encoding := fs.String("encoding", "", "offer up to mmr (default), mr or mh")
	ecm := fs.String("ecm", "auto", "error correction mode: auto/on (offered) or off")
	maxSpeed := fs.Int("max-speed", 0, "highest line speed in bit/s (0: no limit)")
	speed := fs.Int("speed", 115200, "serial port bit rate")
	wait := fs.Duration("wait", time.Hour, "give up when no call came within this long")
	verbose := fs.Bool("v", false, "print each T.30 step")
	var init multiFlag
	fs.Var(&init, "init", "extra modem command after ATZ, without AT (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw fax receive --device DEV [--rings N] [--out DIR] [-v]")
		fs.PrintDefaults()
	}
	if exit, code := parseFlags(fs, args, std); exit {
		return code
	}
	if *device == "" || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	if fi, err := os.Stat(*out); err != nil || !fi.IsDir() {
		fmt.Fprintf(std.err, "mediagw fax receive: --out %s is not a directory\n", *out)
		return 2
	}
	opts := map[string]any{
		"devices":    []map[string]any{{"device": *device, "class": *class, "speed": *speed, "init": []string(init), "mode": "receive", "rings": *rings}},
		"local_id":   *id,
		"resolution": *resolution,
		"encoding":   *encoding,
		"ecm":        *ecm,
		"max_speed":  *maxSpeed,
		"dial":       map[string]any{"region": "US"}, // not used: nothing is dialled
	}
	raw, _ := json.Marshal(opts)
	o, err := faxmodem.ParseOptions(raw)
	if err != nil {
		fmt.Fprintln(std.err, "mediagw fax receive:", err)
		return 2
	}
	drv := faxmodem.NewWith("fax-receive", o, nil)
	defer drv.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	start := time.Now()
	var logf func(step, detail string)
	if *verbose {
		logf = func(step, detail string) {
			fmt.Fprintf(std.out, "%8.3fs  %-8s %s\n", time.Since(start).Seconds(), step, detail)
		}
	}
	in := &fileInbound{}
	rerr := drv.ReceiveOne(ctx, o.Devices[0], in, logf)
	files, werr := in.write(*out)
	if werr != nil {
		fmt.Fprintf(std.err, "mediagw fax receive: writing the %d pages received to %s: %v\n", len(in.pages), *out, werr)
		if rerr != nil {
			fmt.Fprintln(std.err, "mediagw fax receive: the call ended early:", rerr)
		}
		return 1
	}
	switch {
	case in.call == nil && rerr == nil:
		fmt.Fprintln(std.err, "mediagw fax receive: no call")
		return 1
	case in.call == nil:
		fmt.Fprintln(std.err, "mediagw fax receive:", rerr)
		return 1
	}
	c := in.call
	fmt.Fprintf(std.out, "received %d pages from %q (caller %q, called %q) at %s in %s\n", len(in.pages), c.RemoteID,
		c.CallerNumber, c.CalledNumber, c.Params, time.Since(c.Started).Round(time.Millisecond))
	for _, f := range files {
		fmt.Fprintln(std.out, "  "+f)
	}
	if rerr != nil {
		fmt.Fprintln(std.err, "mediagw fax receive: the call ended early:", rerr)
		return 1
	}
	return 0
}
