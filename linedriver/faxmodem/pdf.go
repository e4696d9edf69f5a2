package faxmodem

import (
	"bytes"
	"context"
	"fmt"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxpdf"
)

var _ linedriver.PDFMaker = (*Driver)(nil)

// PagesPDF renders a job's pages as the driver sends them (header line
// included) and writes them as one PDF, for the delivery report.
func (d *Driver) PagesPDF(ctx context.Context, job *linedriver.Job) ([]byte, error) {
	pages, err := d.Render(ctx, job)
	if err != nil {
		return nil, fmt.Errorf("faxmodem: pages of %s: %w", job.ID, err)
	}
	var b bytes.Buffer
	if err := faxpdf.Write(&b, pages); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
