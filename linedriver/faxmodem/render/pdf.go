package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// pdfStart finds "%PDF-" in the first kilobyte (readers allow leading junk).
func pdfStart(data []byte) int {
	return bytes.Index(data[:min(len(data), 1024)], []byte("%PDF-"))
}

// renderPDF runs ghostscript (-dSAFER) to rasterise at most left pages at
// fax resolution, scaled to fit the paper.
func renderPDF(ctx context.Context, data []byte, opts Options, left int) ([]*Page, error) {
	gs, err := exec.LookPath(opts.Ghostscript)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoGhostscript, err)
	}
	start := pdfStart(data)
	if start < 0 {
		return nil, fmt.Errorf("%w: not a PDF (no %%PDF- header)", ErrUnsupported)
	}
	dir, err := os.MkdirTemp("", "mediagw-render-")
	if err != nil {
		return nil, fmt.Errorf("pdf: %w", err)
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "in.pdf")
	if err := os.WriteFile(in, data[start:], 0o600); err != nil {
		return nil, fmt.Errorf("pdf: %w", err)
	}
	h := opts.Paper.Height(opts.Resolution)
	args := []string{
		"-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dNOPROMPT",
		"-sDEVICE=pbmraw",
		fmt.Sprintf("-r204x%d", int(opts.Resolution.DPI())),
		fmt.Sprintf("-g%dx%d", Width, h),
		"-dFIXEDMEDIA", "-dPDFFitPage",
		"-dFirstPage=1", "-dLastPage=" + strconv.Itoa(left+1),
		"-sOutputFile=" + filepath.Join(dir, "p%05d.pbm"),
		"-f", in,
	}
	cmd := exec.CommandContext(ctx, gs, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + dir}
	var stderr limitedBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("pdf: ghostscript stopped: %w", ctx.Err())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "p*.pbm"))
	sort.Strings(files)
	if err != nil || len(files) == 0 {
		return nil, gsError(stderr.String(), err)
	}
	if len(files) > left {
		return nil, fmt.Errorf("%w: the PDF has more than %d pages", ErrTooManyPages, left)
	}
	var pages []*Page
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("pdf: %w", err)
		}
		p, err := parsePBM(raw, opts.Resolution)
		if err != nil {
			return nil, fmt.Errorf("pdf: %s: %w", filepath.Base(f), err)
		}
		pages = append(pages, p)
	}
	return pages, nil
}

// Errors of a PDF that ghostscript cannot render.
var (
	// ErrPDFPassword: the PDF is encrypted with a password needed to open it.
	ErrPDFPassword = errors.New("render: the PDF needs a password to open; ask the sender for one without")
	// ErrPDF wraps ghostscript's own reason for a PDF it could not render.
	ErrPDF = errors.New("render: ghostscript could not render the PDF")
)

// gsError turns ghostscript's output (it often exits 0 having rendered
// nothing) into an error with its own reason.
func gsError(out string, runErr error) error {
	if strings.Contains(out, "requires a password") {
		return ErrPDFPassword
	}
	var reasons []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(strings.Trim(strings.TrimSpace(l), "*"))
		switch {
		case l == "", strings.HasPrefix(l, "GPL Ghostscript"), strings.HasPrefix(l, "Artifex Ghostscript"),
			strings.HasPrefix(l, "Output may be incorrect"), strings.HasPrefix(l, "No pages will be processed"):
			continue
		}
		l = strings.TrimPrefix(l, "Error: ")
		if !slices.Contains(reasons, l) && len(reasons) < 4 {
			reasons = append(reasons, l)
		}
	}
	reason := strings.Join(reasons, "; ")
	switch {
	case reason == "" && runErr != nil:
		reason = runErr.Error()
	case reason == "":
		reason = "it produced no pages (the file may be damaged)"
	}
	return fmt.Errorf("%w: %s", ErrPDF, reason)
}

// parsePBM reads a binary PBM (P4) as written by ghostscript.
func parsePBM(data []byte, r Resolution) (*Page, error) {
	var w, h int
	var fields []int
	i := 2
	if len(data) < 2 || string(data[:2]) != "P4" {
		return nil, errors.New("not a P4 PBM")
	}
	for len(fields) < 2 && i < len(data) {
		c := data[i]
		switch {
		case c == '#':
			for i < len(data) && data[i] != '\n' {
				i++
			}
		case c >= '0' && c <= '9':
			n := 0
			for i < len(data) && data[i] >= '0' && data[i] <= '9' && n < 1<<20 {
				n = n*10 + int(data[i]-'0')
				i++
			}
			fields = append(fields, n)
			continue
		}
		i++
	}
	if len(fields) < 2 {
		return nil, errors.New("short PBM header")
	}
	i++ // the single whitespace after the height
	w, h = fields[0], fields[1]
	p := NewPage(w, h, r)
	if len(data)-i < len(p.Pix) || w != Width {
		return nil, fmt.Errorf("PBM %dx%d with %d bytes of pixels", w, h, len(data)-i)
	}
	copy(p.Pix, data[i:])
	return p, nil
}

// limitedBuffer keeps the first 4 KB of a program's output.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
