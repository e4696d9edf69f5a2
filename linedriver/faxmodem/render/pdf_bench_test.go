package render

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/internal/testenv"
)

// benchPDFs are the PDFs the renderers are compared on: text in several
// sizes, line art, and a five-page letter.
func benchPDFs() []struct {
	name string
	data []byte
	n    int
} {
	var text strings.Builder
	text.WriteString("BT /F1 28 Tf 72 760 Td (Invoice 1001) Tj ET ")
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&text, "BT /F1 %d Tf 72 %d Td (Line %d: the quick brown fox jumps over the lazy dog 0123456789) Tj ET ", 8+i%5, 720-16*i, i+1)
	}
	var art strings.Builder
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&art, "%g w 72 %d m 523 %d l S ", 0.5+float64(i%4)/2, 100+11*i, 760-11*i)
	}
	art.WriteString("0 g 100 100 100 100 re f 300 300 150 80 re f")
	var letter []string
	for p := 0; p < 5; p++ {
		letter = append(letter, text.String())
	}
	return []struct {
		name string
		data []byte
		n    int
	}{
		{"text", pdf([]string{text.String()}, true), 1},
		{"lineart", pdf([]string{art.String()}, true), 1},
		{"letter-5p", pdf(letter, true), 5},
	}
}

// BenchmarkPDF renders the same PDFs with PDFium (embedded) and ghostscript
// side by side: ms/page, and for PDFium the pixels that differ from
// ghostscript's pages, as a share of ghostscript's black pixels (diff-%-of-ink),
// and its black pixels as a share of ghostscript's (ink-%).
//
//	go test -run '^$' -bench PDF ./linedriver/faxmodem/render
func BenchmarkPDF(b *testing.B) {
	ctx := context.Background()
	for _, d := range benchPDFs() {
		var gsPages []*Page
		for _, r := range []string{PDFGhostscript, PDFium} {
			b.Run(d.name+"/"+r, func(b *testing.B) {
				if r == PDFGhostscript {
					testenv.LookPath(b, "gs")
				}
				opts := Options{Resolution: Fine, PDFRenderer: r}
				doc := []Document{{Name: d.name + ".pdf", Data: d.data}}
				pages, err := Render(ctx, doc, opts) // PDFium compiles once per process: not timed
				if err != nil || len(pages) != d.n {
					b.Fatalf("%d pages, %v", len(pages), err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := Render(ctx, doc, opts); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*d.n), "ms/page")
				if r == PDFGhostscript {
					gsPages = pages
				} else if gsPages != nil {
					diff, ink, gsInk := 0, 0, 0
					for i, p := range pages {
						for j := range p.Pix {
							diff += popcount(p.Pix[j] ^ gsPages[i].Pix[j])
							ink += popcount(p.Pix[j])
							gsInk += popcount(gsPages[i].Pix[j])
						}
					}
					b.ReportMetric(100*float64(diff)/float64(gsInk), "diff-%-of-ink")
					b.ReportMetric(100*float64(ink)/float64(gsInk), "ink-%")
				}
			})
		}
	}
}

func popcount(v byte) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}
