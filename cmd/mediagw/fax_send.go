package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem"
)

func init() {
	register(command{
		Name:  "fax send",
		Usage: "--device DEV --region CC [--class auto|1|1.0|2|2.0] [--modulations V.17,V.29,V.27ter] [--paper a4|letter] --to NUMBER [-v] FILE...",
		Short: "send files as one fax through a fax modem, printing each T.30 step with -v",
		Run:   runFaxSend,
	})
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func mediaTypeOf(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".txt", ".text":
		return "text/plain; charset=utf-8"
	case ".pdf":
		return "application/pdf"
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".gif":
		return "image/gif"
	case ".tif", ".tiff":
		return "image/tiff"
	}
	return "" // sniffed
}

func runFaxSend(args []string, std stdio) int {
	fs := flag.NewFlagSet("fax send", flag.ContinueOnError)
	device := fs.String("device", "", "serial device of the fax modem (e.g. /dev/ttyUSB0)")
	class := fs.String("class", "auto", "fax class: auto, 1, 1.0, 2 or 2.0")
	to := fs.String("to", "", "fax number: +1 201 555 0123, or as written in --region")
	region := fs.String("region", "", "ISO 3166 code of the country the line is in (US, GB, DE): national or international dialling")
	outside := fs.String("outside-line", "", "dialled first for an outside line from a PBX (e.g. 9 or 9,)")
	modifiers := fs.String("dial-modifiers", "", "the modem's dial modifiers before the number (T tone, P pulse, W wait for dial tone)")
	denyTypes := fs.String("deny-types", strings.Join(faxmodem.DefaultDenyTypes, ","), "number types refused (comma-separated; \"\" for none)")
	id := fs.String("id", "", "local identification sent as TSI (up to 20 characters)")
	header := fs.String("header", "", "sender name on the header line of each page (empty: no header line)")
	resolution := fs.String("resolution", "fine", "fine or standard")
	encoding := fs.String("encoding", "", "mmr, mr or mh (default: the best the far end takes — MMR over ECM, else MR, else MH)")
	ecm := fs.String("ecm", "auto", "error correction mode: auto (when the far end offers it), on or off")
	maxSpeed := fs.Int("max-speed", 0, "highest line speed in bit/s (e.g. 9600; 0: no limit)")
	modulations := fs.String("modulations", "", "Class 1 carriers allowed (tried fastest first), comma-separated: V.17,V.29,V.27ter (default: all)")
	paper := fs.String("paper", "a4", "page length the documents are laid out on: a4 or letter")
	speed := fs.Int("speed", 115200, "serial port bit rate")
	fs.Func("dial-prefix", "removed: use --outside-line and --dial-modifiers", func(string) error {
		return errors.New("--dial-prefix was removed: --outside-line takes a PBX code, --dial-modifiers the modem's T, P, W")
	})
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long")
	verbose := fs.Bool("v", false, "print each T.30 step")
	var allow, init multiFlag
	fs.Var(&allow, "allow", "E.164 pattern to allow (repeatable; only matching numbers, and a match lifts the international denial), e.g. +44*")
	fs.Var(&init, "init", "extra modem command after ATZ, without AT (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw fax send --device DEV --region CC [--class auto] --to NUMBER [-v] FILE...")
		fs.PrintDefaults()
	}
	if exit, code := parseFlags(fs, args, std); exit {
		return code
	}
	if *device == "" || *to == "" || *region == "" || fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	mods, err := faxmodem.ParseModulations(*modulations)
	if err != nil {
		fmt.Fprintln(std.err, "mediagw fax send: --"+err.Error())
		return 2
	}
	if _, err := faxmodem.ParsePaper(*paper); err != nil {
		fmt.Fprintln(std.err, "mediagw fax send: --"+err.Error())
		return 2
	}
	types := []string{}
	for _, t := range strings.Split(*denyTypes, ",") {
		if t = strings.TrimSpace(t); t != "" {
			types = append(types, t)
		}
	}
	opts := map[string]any{
		"devices":     []map[string]any{{"device": *device, "class": *class, "speed": *speed, "dial_modifiers": *modifiers, "init": []string(init)}},
		"local_id":    *id,
		"header":      *header,
		"resolution":  *resolution,
		"encoding":    *encoding,
		"ecm":         *ecm,
		"max_speed":   *maxSpeed,
		"paper":       *paper,
		"modulations": mods,
		"retry":       map[string]any{"max_attempts": 1},
		"dial":        map[string]any{"region": *region, "outside_line": *outside, "allow": []string(allow), "deny_types": types},
	}
	raw, _ := json.Marshal(opts)
	drv, err := faxmodem.New("fax-send", raw, nil)
	if err != nil {
		fmt.Fprintln(std.err, "mediagw fax send:", err)
		return 2
	}
	defer drv.Close()
	rec := linedriver.Record{ID: "manual", Fields: map[string]string{"fax_number": *to}, Received: time.Now()}
	for _, f := range fs.Args() {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(std.err, "mediagw fax send:", err)
			return 1
		}
		rec.Documents = append(rec.Documents, linedriver.Document{Name: filepath.Base(f), MediaType: mediaTypeOf(f), Data: data})
	}
	if err := drv.Check(&rec); err != nil {
		fmt.Fprintln(std.err, "mediagw fax send:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	start := time.Now()
	job := &linedriver.Job{ID: "manual", Driver: "fax-send", Record: rec, Attempt: 1, Accepted: start}
	out := drv.Deliver(ctx, job, func(p linedriver.Progress) {
		if *verbose {
			fmt.Fprintf(std.out, "%8.3fs  %-8s %s\n", time.Since(start).Seconds(), p.Step, p.Detail)
		}
	})
	if out.Result == linedriver.Delivered {
		fmt.Fprintf(std.out, "sent %s pages to %s (remote %q) at %s, %s, %s in %s\n", out.Details["pages"], *to,
			out.Details["remote_id"], out.Details["speed"], out.Details["resolution"], out.Details["encoding"], out.Details["duration"])
		return 0
	}
	var st faxmodem.State
	json.Unmarshal(out.State, &st) //nolint:errcheck // empty state is fine
	fmt.Fprintf(std.err, "mediagw fax send: not sent (%s): %s; %d pages were confirmed\n", out.Category, out.Reason, st.Confirmed)
	return 1
}
