package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mediagw/mediagw/internal/sniff"
)

// Office converts Office documents (Word, Excel, PowerPoint, OpenDocument,
// RTF) to PDF with LibreOffice in headless mode; the PDF then takes the PDF
// path. Every conversion gets its own scratch folder and LibreOffice profile
// (two conversions sharing a profile block each other), with macros
// disabled; at most MaxConcurrent run at once. An Office is safe for
// concurrent use; share one per process (DefaultOffice).
type Office struct {
	// Program is the soffice program; empty looks up "soffice" in PATH.
	Program string
	// MaxConcurrent bounds conversions running at once (0: 2). Each
	// LibreOffice takes about 200 MB and a core while it converts.
	MaxConcurrent int
	// Timeout bounds one conversion (0: 60 s); the job's own deadline
	// applies too.
	Timeout time.Duration
	// ScratchDir holds the per-conversion folders (empty: os.TempDir()).
	ScratchDir string

	once sync.Once
	sem  chan struct{}
}

// DefaultOffice is used when Options.Office is nil.
var DefaultOffice = &Office{}

// ErrNoLibreOffice: Office documents need LibreOffice.
var ErrNoLibreOffice = errors.New("render: LibreOffice (soffice) is not installed; it is needed for Office documents " +
	"(Debian: apt-get install libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui)")

// ErrConvert wraps LibreOffice's own reason when a conversion fails.
var ErrConvert = errors.New("render: LibreOffice could not convert the document")

// officeExt is the file name extension LibreOffice gets for each type (it
// detects by content too, but a right name avoids a wrong filter).
var officeExt = map[string]string{
	sniff.DOCX: ".docx", sniff.XLSX: ".xlsx", sniff.PPTX: ".pptx",
	sniff.ODT: ".odt", sniff.ODS: ".ods", sniff.ODP: ".odp",
	sniff.DOC: ".doc", sniff.XLS: ".xls", sniff.PPT: ".ppt", sniff.RTF: ".rtf",
}

// macrosOff is the profile's registry: the highest macro security level and
// macro execution disabled, so a document's macros never run.
const macrosOff = `<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc"><prop oor:name="FirstRun" oor:op="fuse"><value>false</value></prop></item>
</oor:items>
`

func (o *Office) program() string {
	if o.Program == "" {
		return "soffice"
	}
	return o.Program
}

// ToPDF converts one Office document to PDF.
func (o *Office) ToPDF(ctx context.Context, data []byte, mediaType string) ([]byte, error) {
	o.once.Do(func() {
		n := o.MaxConcurrent
		if n <= 0 {
			n = 2
		}
		o.sem = make(chan struct{}, n)
	})
	path, err := exec.LookPath(o.program())
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoLibreOffice, err)
	}
	select {
	case o.sem <- struct{}{}:
		defer func() { <-o.sem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("render: waiting for LibreOffice: %w", ctx.Err())
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dir, err := os.MkdirTemp(o.ScratchDir, "office-")
	if err != nil {
		return nil, fmt.Errorf("render: office scratch folder: %w", err)
	}
	defer os.RemoveAll(dir)
	profile := filepath.Join(dir, "profile")
	if err := os.MkdirAll(filepath.Join(profile, "user"), 0o700); err != nil {
		return nil, fmt.Errorf("render: office profile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(profile, "user", "registrymodifications.xcu"), []byte(macrosOff), 0o600); err != nil {
		return nil, fmt.Errorf("render: office profile: %w", err)
	}
	ext := officeExt[mediaType]
	if ext == "" {
		ext = ".bin"
	}
	in := filepath.Join(dir, "document"+ext)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		return nil, fmt.Errorf("render: office input: %w", err)
	}
	out := filepath.Join(dir, "out")
	cmd := exec.CommandContext(ctx, path, "--headless", "--norestore", "--nologo", "--nodefault", "--nolockcheck",
		"-env:UserInstallation=file://"+profile, "--convert-to", "pdf", "--outdir", out, in)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir) // nothing of the service user's own profile
	// soffice starts soffice.bin: kill the whole group on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr, stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("render: LibreOffice took longer than %v: %w", timeout, ctx.Err())
	}
	pdf, err := os.ReadFile(filepath.Join(out, "document.pdf"))
	if err == nil && len(pdf) > 0 {
		return pdf, nil
	}
	reason := officeReason(stderr.String() + "\n" + stdout.String())
	if runErr != nil && reason == "" {
		reason = runErr.Error()
	}
	if reason == "" {
		reason = "it produced no PDF"
	}
	return nil, fmt.Errorf("%w: %s", ErrConvert, reason)
}

// officeReason picks LibreOffice's own words out of its output, without the
// noise it always prints (javaldx, fontconfig).
func officeReason(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "", strings.Contains(l, "javaldx"), strings.HasPrefix(l, "convert "), strings.HasPrefix(l, "Fontconfig"):
			continue
		}
		if strings.Contains(l, "source file could not be loaded") {
			l = "the file could not be loaded (damaged, or protected by a password)"
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "; ")
}

func renderOffice(ctx context.Context, d Document, t sniff.Type, opts Options, left int) ([]*Page, error) {
	o := opts.Office
	if o == nil {
		o = DefaultOffice
	}
	pdf, err := o.ToPDF(ctx, d.Data, t.MediaType)
	if err != nil {
		return nil, err
	}
	return renderPDFWith(ctx, pdf, opts, left)
}
