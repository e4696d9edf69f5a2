package main

import (
	"context"
	"flag"
	"fmt"
	"mime"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

func init() {
	register(command{
		Name:  "fax render",
		Usage: "[--resolution standard|fine] [--encoding mh|mr|mmr] [--paper a4|letter] [--header TEXT] [--to NUMBER] [--dither] [--png DIR] -o out.tif FILE...",
		Short: "render documents into the fax pages that would be sent (TIFF Class F, PNG previews)",
		Run:   runFaxRender,
	})
}

func runFaxRender(args []string, std stdio) int {
	fs := flag.NewFlagSet("fax render", flag.ContinueOnError)
	res := fs.String("resolution", "fine", "vertical resolution: standard (98 dpi) or fine (196 dpi)")
	enc := fs.String("encoding", "mh", "coding of the TIFF pages: mh, mr or mmr")
	paper := fs.String("paper", "a4", "paper size: a4 or letter")
	header := fs.String("header", "", "sender shown in the header line of every page (empty: no header)")
	to := fs.String("to", "", "recipient shown in the header line")
	dither := fs.Bool("dither", false, "treat every image as a photo (halftone screen); default: each image's histogram decides photo or line art")
	out := fs.String("o", "", "output TIFF Class F file (required unless --png is given)")
	pngDir := fs.String("png", "", "directory for one PNG preview per page")
	maxPages := fs.Int("max-pages", 50, "refuse jobs with more pages")
	timeout := fs.Duration("timeout", 2*time.Minute, "time limit for rendering (ghostscript included)")
	pdfRenderer := fs.String("pdf-renderer", "auto", "PDF renderer: auto (gs when installed, else the embedded PDFium), pdfium or ghostscript")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw fax render [flags] FILE...\n\nRenders text, PNG/JPEG/GIF/BMP, TIFF, PDF and Office files into fax pages, exactly as they would be sent.\n\nFlags:")
		fs.PrintDefaults()
	}
	if exit, code := parseFlags(fs, args, std); exit {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(std.err, "mediagw fax render: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() == 0 {
		return fail("no input files")
	}
	if *out == "" && *pngDir == "" {
		return fail("give -o out.tif and/or --png DIR")
	}
	opts := render.Options{Dither: *dither, MaxPages: *maxPages, Timeout: *timeout,
		Warn: func(w string) { fmt.Fprintf(std.err, "mediagw fax render: warning: %s\n", w) }}
	var err error
	if opts.PDFRenderer, err = render.ParsePDFRenderer(*pdfRenderer); err != nil {
		return fail("--pdf-renderer: %v", err)
	}
	switch strings.ToLower(*res) {
	case "standard", "std", "normal":
		opts.Resolution = render.Standard
	case "fine":
		opts.Resolution = render.Fine
	default:
		return fail("--resolution: want standard or fine, got %q", *res)
	}
	switch strings.ToLower(*paper) {
	case "a4":
		opts.Paper = render.A4
	case "letter":
		opts.Paper = render.Letter
	default:
		return fail("--paper: want a4 or letter, got %q", *paper)
	}
	encoding, err := t4.ParseEncoding(strings.ToLower(*enc))
	if err != nil {
		return fail("--encoding: %v", err)
	}
	if *header != "" || *to != "" {
		opts.Header = &render.Header{From: *header, To: *to, Time: time.Now()}
	}
	var docs []render.Document
	for _, name := range fs.Args() {
		data, err := os.ReadFile(name)
		if err != nil {
			return fail("%v", err)
		}
		mt := mime.TypeByExtension(strings.ToLower(filepath.Ext(name)))
		if strings.HasPrefix(mt, "text/plain") || strings.EqualFold(filepath.Ext(name), ".txt") {
			mt = "text/plain" // UTF-8, or windows-1252 when it is not valid UTF-8
		}
		docs = append(docs, render.Document{Name: name, MediaType: mt, Data: data})
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	pages, err := render.Render(ctx, docs, opts)
	if err != nil {
		fmt.Fprintf(std.err, "mediagw fax render: %v\n", err)
		return 1
	}
	if *out != "" {
		if err := writeTIFF(*out, pages, encoding); err != nil {
			fmt.Fprintf(std.err, "mediagw fax render: %v\n", err)
			return 1
		}
	}
	if *pngDir != "" {
		if err := os.MkdirAll(*pngDir, 0o755); err != nil {
			return fail("%v", err)
		}
		for i, p := range pages {
			name := filepath.Join(*pngDir, fmt.Sprintf("page-%03d.png", i+1))
			f, err := os.Create(name)
			if err != nil {
				return fail("%v", err)
			}
			err = render.WritePNG(f, p)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fail("%s: %v", name, err)
			}
		}
	}
	fmt.Fprintf(std.out, "%d page(s), %s resolution, %s, %s\n", len(pages), opts.Resolution, opts.Paper, encoding)
	return 0
}

func writeTIFF(name string, pages []*render.Page, e t4.Encoding) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := faxtiff.NewWriter(f, faxtiff.Options{Encoding: e})
	for _, p := range pages {
		if err := w.WritePage(p.Bitmap()); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
