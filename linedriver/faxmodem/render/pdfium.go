package render

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"os/exec"
	"sync"
	"time"

	"github.com/klippa-app/go-pdfium"
	pdfiumerrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// PDF renderers (Options.PDFRenderer).
const (
	PDFAuto        = "auto"        // ghostscript when gs is installed, else PDFium (see README for the figures)
	PDFium         = "pdfium"      // PDFium compiled to WebAssembly, run by wazero inside the process
	PDFGhostscript = "ghostscript" // gs -dSAFER, which must be installed
)

// ParsePDFRenderer checks a pdf_renderer setting ("" is auto).
func ParsePDFRenderer(s string) (string, error) {
	switch s {
	case "", PDFAuto:
		return PDFAuto, nil
	case PDFium, PDFGhostscript:
		return s, nil
	}
	return "", fmt.Errorf("render: pdf_renderer %q: want auto, pdfium or ghostscript", s)
}

// pdfRenderer is the renderer opts choose. Auto takes ghostscript when it
// is installed (faster per page than PDFium with its calls made
// interruptible), else the embedded PDFium, so that a PDF is faxed on a
// machine with nothing installed.
func (o *Options) pdfRenderer() string {
	switch o.PDFRenderer {
	case PDFGhostscript, PDFium:
		return o.PDFRenderer
	}
	gs := o.Ghostscript
	if gs == "" {
		gs = "gs"
	}
	if _, err := exec.LookPath(gs); err == nil {
		return PDFGhostscript
	}
	return PDFium
}

// pdfiumMemoryPages bounds one PDFium instance's memory (64 KiB pages): 1 GiB.
const pdfiumMemoryPages = 16384

var pdfiumPool struct {
	sync.Mutex
	pool pdfium.Pool
	err  error
}

// getPDFium starts the WebAssembly runtime once per process: compiling
// the module takes seconds, an instance then milliseconds. The module sees
// no file system (documents are passed as bytes) and prints nowhere.
func getPDFium() (pdfium.Pool, error) {
	pdfiumPool.Lock()
	defer pdfiumPool.Unlock()
	if pdfiumPool.pool == nil && pdfiumPool.err == nil {
		pdfiumPool.pool, pdfiumPool.err = webassembly.Init(webassembly.Config{
			MinIdle: 0, MaxIdle: 1, MaxTotal: 2, ReuseWorkers: true,
			FSConfig: wazero.NewFSConfig(),
			Stdout:   io.Discard, Stderr: io.Discard,
			RuntimeConfig: wazero.NewRuntimeConfig().
				WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
				WithMemoryLimitPages(pdfiumMemoryPages).
				WithCloseOnContextDone(true), // so that Kill stops a call under way
		})
		if pdfiumPool.err != nil {
			pdfiumPool.err = fmt.Errorf("pdf: starting PDFium: %w", pdfiumPool.err)
		}
	}
	return pdfiumPool.pool, pdfiumPool.err
}

// renderPDFWith renders a PDF with the renderer opts choose.
func renderPDFWith(ctx context.Context, data []byte, opts Options, left int) ([]*Page, error) {
	if opts.pdfRenderer() == PDFGhostscript {
		return renderPDF(ctx, data, opts, left)
	}
	return renderPDFium(ctx, data, opts, left)
}

// renderPDFium rasterises at most left pages with PDFium, each page scaled
// to fit the paper (a landscape page turned to portrait), as gs
// -dPDFFitPage does.
func renderPDFium(ctx context.Context, data []byte, opts Options, left int) ([]*Page, error) {
	start := pdfStart(data)
	if start < 0 {
		return nil, fmt.Errorf("%w: not a PDF (no %%PDF- header)", ErrUnsupported)
	}
	pool, err := getPDFium()
	if err != nil {
		return nil, err
	}
	wait := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = max(time.Until(dl), time.Millisecond)
	}
	inst, err := pool.GetInstance(wait)
	if err != nil {
		return nil, fmt.Errorf("pdf: PDFium: %w", err)
	}
	// PDFium calls take no context: a job past its deadline kills the
	// instance, which ends the call under way.
	done := make(chan struct{})
	watcher := make(chan bool, 1) // true when the watcher killed the instance
	go func() {
		select {
		case <-ctx.Done():
			inst.Kill()
			watcher <- true
		case <-done:
			watcher <- false
		}
	}()
	defer func() {
		close(done)
		if !<-watcher { // the watcher has finished: no Kill runs beside Close
			inst.Close()
		}
	}()
	pdf := data[start:]
	doc, err := inst.OpenDocument(&requests.OpenDocument{File: &pdf})
	if ctx.Err() != nil {
		return nil, fmt.Errorf("pdf: PDFium stopped: %w", ctx.Err())
	}
	if err != nil {
		if errors.Is(err, pdfiumerrors.ErrPassword) {
			return nil, ErrPDFPassword
		}
		return nil, fmt.Errorf("%w: %v", ErrPDF, err)
	}
	defer inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: doc.Document})
	count, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: doc.Document})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPDF, err)
	}
	if count.PageCount == 0 {
		return nil, fmt.Errorf("%w: the PDF has no pages", ErrPDF)
	}
	if count.PageCount > left {
		return nil, fmt.Errorf("%w: the PDF has more than %d pages", ErrTooManyPages, left)
	}
	var pages []*Page
	for i := 0; i < count.PageCount; i++ {
		p, err := pdfiumPage(inst, doc.Document, i, opts)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pdf: PDFium stopped: %w", ctx.Err())
		}
		if err != nil {
			return nil, fmt.Errorf("pdf: page %d: %w", i+1, err)
		}
		pages = append(pages, p)
	}
	return pages, nil
}

func pdfiumPage(inst pdfium.Pdfium, doc references.FPDF_DOCUMENT, i int, opts Options) (*Page, error) {
	ref := requests.Page{ByIndex: &requests.PageByIndex{Document: doc, Index: i}}
	size, err := inst.GetPageSize(&requests.GetPageSize{Page: ref})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPDF, err)
	}
	h := opts.Paper.Height(opts.Resolution)
	dpi := opts.Resolution.DPI()
	pw, ph := size.Width/72, size.Height/72 // inches
	if pw <= 0 || ph <= 0 {
		return nil, fmt.Errorf("%w: page size %gx%g points", ErrPDF, size.Width, size.Height)
	}
	turn := pw > ph // a landscape page is turned to fit the portrait paper
	fw, fh := pw, ph
	if turn {
		fw, fh = ph, pw
	}
	s := math.Min(float64(Width)/204/fw, float64(h)/dpi/fh)
	// Rendered square at 204 dpi (PDFium keeps the aspect), then rows
	// merged to the fax resolution.
	rw := int(math.Round(pw * s * 204))
	rh := int(math.Round(ph * s * 204))
	res, err := inst.RenderPageInPixels(&requests.RenderPageInPixels{
		Page: ref, Width: rw, Height: rh, ImageFormat: requests.RenderImageFormatGrayscale,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPDF, err)
	}
	defer res.Cleanup()
	gray, ok := res.Result.RenderedImage.(*image.Gray)
	if !ok {
		return nil, fmt.Errorf("%w: PDFium returned %T", ErrPDF, res.Result.RenderedImage)
	}
	if turn {
		gray = turnGray(gray)
	}
	return fitGray(gray, opts.Resolution, h), nil
}

// turnGray turns an image a quarter counter-clockwise, as ghostscript
// turns a landscape page.
func turnGray(g *image.Gray) *image.Gray {
	b := g.Bounds()
	w, h := b.Dx(), b.Dy()
	out := image.NewGray(image.Rect(0, 0, h, w))
	for y := 0; y < h; y++ {
		row := g.Pix[y*g.Stride : y*g.Stride+w]
		for x, v := range row {
			out.Pix[(w-1-x)*out.Stride+y] = v
		}
	}
	return out
}

// fitGray merges the 204 dpi rows of g to the resolution's (each row
// the mean of the rows it covers), thresholds at half grey and centres the
// result on a white page of the paper's height.
func fitGray(g *image.Gray, r Resolution, height int) *Page {
	b := g.Bounds()
	w, h := min(b.Dx(), Width), b.Dy()
	ratio := 204 / r.DPI()
	rows := min(int(math.Round(float64(h)/ratio)), height)
	p := NewPage(Width, height, r)
	x0, y0 := (Width-w)/2, (height-rows)/2
	sum := make([]float64, w)
	for y := 0; y < rows; y++ {
		from, to := float64(y)*ratio, math.Min(float64(y+1)*ratio, float64(h))
		clear(sum)
		total := 0.0
		for sy := int(from); float64(sy) < to; sy++ {
			wt := math.Min(float64(sy+1), to) - math.Max(float64(sy), from)
			if wt <= 0 {
				continue
			}
			total += wt
			row := g.Pix[sy*g.Stride : sy*g.Stride+w]
			for x, v := range row {
				sum[x] += wt * float64(v)
			}
		}
		if total == 0 {
			continue
		}
		out := p.Pix[(y0+y)*p.Stride:]
		for x, v := range sum {
			if v/total < pdfiumThreshold {
				px := x0 + x
				out[px/8] |= 0x80 >> uint(px%8)
			}
		}
	}
	return p
}

// pdfiumThreshold is the grey below which a pixel is black. PDFium
// anti-aliases; ghostscript's bilevel device blackens every pixel a shape
// touches, so the threshold sits above half grey to keep thin lines.
const pdfiumThreshold = 150
