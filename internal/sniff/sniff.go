// Package sniff tells what a document is from its content, whatever its
// Content-Type or file name claims: PDF, TIFF, PNG, JPEG, GIF, BMP,
// PBM/PGM/PPM, Office Open XML and OpenDocument (zip), the old binary Office
// formats (OLE), RTF, plain text. Senders label files badly (a PDF as
// application/octet-stream, a photo as application/x-unknown); the gateway
// decides by the bytes.
package sniff

import (
	"archive/zip"
	"bytes"
	"io"
	"mime"
	"strings"
	"unicode/utf8"
)

// Kind is the family of a document: what it takes to put it on a page.
type Kind int

const (
	Unknown Kind = iota // not a document the gateway can lay out
	PDF
	Image  // PNG, JPEG, GIF, BMP, PBM/PGM/PPM
	TIFF   // possibly several pages, possibly already fax pages
	Office // converted to PDF by an office suite
	Text
)

func (k Kind) String() string {
	switch k {
	case PDF:
		return "pdf"
	case Image:
		return "image"
	case TIFF:
		return "tiff"
	case Office:
		return "office"
	case Text:
		return "text"
	}
	return "unknown"
}

// Type is what Detect found.
type Type struct {
	Kind      Kind
	MediaType string // e.g. "application/pdf"; for text the declared parameters are kept
	// Name says what it is in words, for messages: "a PDF document",
	// "a ZIP archive", "an Outlook message (.msg)".
	Name string
}

// Media types of the Office formats.
const (
	DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
	ODT  = "application/vnd.oasis.opendocument.text"
	ODS  = "application/vnd.oasis.opendocument.spreadsheet"
	ODP  = "application/vnd.oasis.opendocument.presentation"
	DOC  = "application/msword"
	XLS  = "application/vnd.ms-excel"
	PPT  = "application/vnd.ms-powerpoint"
	RTF  = "application/rtf"
)

// sniffLen is how much of the start is looked at for text and PDF headers.
const sniffLen = 8 << 10

// Detect returns the type of data. declared is the Content-Type the sender
// gave (may be empty); it only contributes the parameters (charset) of a text
// document and the name of an unknown type.
func Detect(data []byte, declared string) Type {
	head := data[:min(len(data), sniffLen)]
	switch {
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return Type{Image, "image/png", "a PNG image"}
	case bytes.HasPrefix(head, []byte("\xff\xd8\xff")):
		return Type{Image, "image/jpeg", "a JPEG image"}
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return Type{Image, "image/gif", "a GIF image"}
	case bytes.HasPrefix(head, []byte("II*\x00")), bytes.HasPrefix(head, []byte("MM\x00*")):
		return Type{TIFF, "image/tiff", "a TIFF image"}
	case isBMP(head):
		return Type{Image, "image/bmp", "a BMP image"}
	case isPNM(head):
		return Type{Image, "image/x-portable-anymap", "a PBM/PGM/PPM image"}
	case bytes.Contains(head[:min(len(head), 1024)], []byte("%PDF-")):
		return Type{PDF, "application/pdf", "a PDF document"}
	case bytes.HasPrefix(head, []byte(`{\rtf`)):
		return Type{Office, RTF, "an RTF document"}
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return zipType(data)
	case bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return Type{Unknown, "application/zip", "an empty ZIP archive"}
	case bytes.HasPrefix(head, []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")):
		return oleType(data)
	}
	if t, ok := other(head); ok {
		if t.MediaType == "" {
			return unknown(declared, t.Name)
		}
		return t
	}
	if isText(head, len(data) > len(head)) {
		mt := "text/plain"
		if dt, params, err := mime.ParseMediaType(declared); err == nil && strings.HasPrefix(dt, "text/") {
			if cs := params["charset"]; cs != "" {
				mt = mime.FormatMediaType("text/plain", map[string]string{"charset": cs})
			}
		}
		return Type{Text, mt, "a text"}
	}
	return unknown(declared, "")
}

// unknown is a file that is not a document. Its declared type is kept when
// it does not claim to be a document (a video stays video/mp4); a claim
// that the content disproves becomes application/octet-stream.
func unknown(declared, name string) Type {
	dt, _, err := mime.ParseMediaType(declared)
	dt = strings.ToLower(dt)
	if name == "" {
		name = "a file of unknown type"
		if err == nil && dt != "application/octet-stream" {
			name += " (declared " + dt + ")"
		}
	}
	if err != nil || dt == "" || claimsDocument(dt) {
		return Type{Unknown, "application/octet-stream", name}
	}
	return Type{Unknown, dt, name}
}

// claimsDocument: a media type that names one of the document kinds.
func claimsDocument(mt string) bool {
	switch {
	case mt == "application/pdf", strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "text/"),
		strings.HasPrefix(mt, "application/vnd.openxmlformats-officedocument."),
		strings.HasPrefix(mt, "application/vnd.oasis.opendocument."),
		mt == DOC, mt == XLS, mt == PPT, mt == RTF, mt == "text/rtf":
		return true
	}
	return false
}

// other recognises common formats that are not documents, so that a
// rejection can say what the file is.
func other(head []byte) (Type, bool) {
	for _, s := range []struct {
		magic, mt, name string
	}{
		{"\x1f\x8b", "application/gzip", "a gzip archive"},
		{"Rar!\x1a\x07", "application/vnd.rar", "a RAR archive"},
		{"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed", "a 7-Zip archive"},
		{"MZ", "application/vnd.microsoft.portable-executable", "a Windows program"},
		{"\x7fELF", "application/x-executable", "a program"},
		{"\x78\x9f\x3e\x22", "application/vnd.ms-tnef", "a winmail.dat (TNEF) container"},
		{"RIFF", "", "a RIFF media file (audio or video)"},
		{"OggS", "audio/ogg", "an Ogg audio or video file"},
		{"ID3", "audio/mpeg", "an MP3 audio file"},
		{"%!PS", "application/postscript", "a PostScript program"},
		{"\xc5\xd0\xd3\xc6", "application/postscript", "a PostScript program"},
		{"BEGIN:VCARD", "text/vcard", "a contact card (vCard)"},
		{"BEGIN:VCALENDAR", "text/calendar", "a calendar entry (iCalendar)"},
	} {
		if bytes.HasPrefix(head, []byte(s.magic)) {
			return Type{Unknown, s.mt, s.name}, true
		}
	}
	if len(head) >= 12 && string(head[4:8]) == "ftyp" {
		return Type{Unknown, "video/mp4", "an MP4/HEIC media file"}, true
	}
	trimmed := bytes.ToLower(bytes.TrimLeft(head[:min(len(head), 512)], " \t\r\n\xef\xbb\xbf"))
	for _, p := range []string{"<!doctype html", "<html", "<head", "<body"} {
		if bytes.HasPrefix(trimmed, []byte(p)) {
			return Type{Unknown, "text/html", "an HTML page"}, true
		}
	}
	if bytes.HasPrefix(trimmed, []byte("<?xml")) || bytes.HasPrefix(trimmed, []byte("<svg")) {
		if bytes.Contains(trimmed, []byte("<svg")) {
			return Type{Unknown, "image/svg+xml", "an SVG drawing"}, true
		}
	}
	return Type{}, false
}

func isBMP(b []byte) bool {
	// "BM", then the file size, two reserved words, the pixel offset and a
	// DIB header size of 12, 40, 52, 56, 108 or 124.
	if len(b) < 18 || b[0] != 'B' || b[1] != 'M' {
		return false
	}
	switch uint32(b[14]) | uint32(b[15])<<8 | uint32(b[16])<<16 | uint32(b[17])<<24 {
	case 12, 40, 52, 56, 64, 108, 124:
		return true
	}
	return false
}

// isPNM: "P1".."P6" followed by white space or a comment, then a digit.
func isPNM(b []byte) bool {
	if len(b) < 3 || b[0] != 'P' || b[1] < '1' || b[1] > '6' {
		return false
	}
	i := 2
	for i < len(b) {
		switch c := b[i]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '#':
			for i < len(b) && b[i] != '\n' && b[i] != '\r' {
				i++
			}
		default:
			return i > 2 && c >= '0' && c <= '9'
		}
	}
	return false
}

// zipType looks inside a zip: Office Open XML has [Content_Types].xml and a
// word/, xl/ or ppt/ folder; OpenDocument starts with a "mimetype" member.
func zipType(data []byte) Type {
	var names []string
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		// Only the start of the file (or a damaged one): read the local
		// file headers that are there.
		return zipHeadType(data)
	}
	if len(zr.File) > 0 && zr.File[0].Name == "mimetype" {
		if t, ok := odfType(zr.File[0]); ok {
			return t
		}
	}
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	return ooxmlType(names)
}

func ooxmlType(names []string) Type {
	var ct, word, xl, ppt bool
	for _, name := range names {
		switch {
		case name == "[Content_Types].xml":
			ct = true
		case strings.HasPrefix(name, "word/"):
			word = true
		case strings.HasPrefix(name, "xl/"):
			xl = true
		case strings.HasPrefix(name, "ppt/"):
			ppt = true
		}
	}
	switch {
	case ct && word:
		return Type{Office, DOCX, "a Word document (.docx)"}
	case ct && xl:
		return Type{Office, XLSX, "an Excel workbook (.xlsx)"}
	case ct && ppt:
		return Type{Office, PPTX, "a PowerPoint presentation (.pptx)"}
	}
	return Type{Unknown, "application/zip", "a ZIP archive"}
}

// zipHeadType walks the local file headers in b (the start of a zip).
func zipHeadType(b []byte) Type {
	var names []string
	for len(b) >= 30 && bytes.HasPrefix(b, []byte("PK\x03\x04")) {
		flags := int(b[6]) | int(b[7])<<8
		size := int(b[18]) | int(b[19])<<8 | int(b[20])<<16 | int(b[21])<<24
		nameLen := int(b[26]) | int(b[27])<<8
		extraLen := int(b[28]) | int(b[29])<<8
		if 30+nameLen > len(b) {
			break
		}
		name := string(b[30 : 30+nameLen])
		names = append(names, name)
		start := 30 + nameLen + extraLen
		if start > len(b) {
			break
		}
		if len(names) == 1 && name == "mimetype" {
			// Stored, not compressed: the content follows the header.
			rest := b[start:]
			for _, t := range []Type{
				{Office, ODT, "an OpenDocument text (.odt)"},
				{Office, ODS, "an OpenDocument spreadsheet (.ods)"},
				{Office, ODP, "an OpenDocument presentation (.odp)"},
			} {
				if bytes.HasPrefix(rest, []byte(t.MediaType)) && (len(rest) == len(t.MediaType) || rest[len(t.MediaType)] != '-') {
					return t
				}
			}
		}
		if flags&8 != 0 {
			// The sizes follow the data: look for the next header.
			i := bytes.Index(b[start:], []byte("PK\x03\x04"))
			if i < 0 {
				break
			}
			b = b[start+i:]
			continue
		}
		if size < 0 || start+size > len(b) {
			break
		}
		b = b[start+size:]
	}
	return ooxmlType(names)
}

func odfType(f *zip.File) (Type, bool) {
	if f.UncompressedSize64 > 100 {
		return Type{}, false
	}
	rc, err := f.Open()
	if err != nil {
		return Type{}, false
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 100))
	if err != nil {
		return Type{}, false
	}
	switch string(bytes.TrimSpace(b)) {
	case ODT:
		return Type{Office, ODT, "an OpenDocument text (.odt)"}, true
	case ODS:
		return Type{Office, ODS, "an OpenDocument spreadsheet (.ods)"}, true
	case ODP:
		return Type{Office, ODP, "an OpenDocument presentation (.odp)"}, true
	}
	return Type{}, false
}

// oleType names an OLE compound file by the streams it holds. The stream
// names are stored in UTF-16LE in the directory; looking for them in the
// bytes is enough to tell Word, Excel and PowerPoint from the rest (Outlook
// .msg files, Visio drawings, ...).
func oleType(data []byte) Type {
	has := func(name string) bool {
		u := make([]byte, 0, 2*len(name))
		for i := 0; i < len(name); i++ {
			u = append(u, name[i], 0)
		}
		return bytes.Contains(data, u)
	}
	switch {
	case has("EncryptedPackage"):
		return Type{Unknown, "application/x-ole-storage", "a password-protected Office document"}
	case has("__substg1.0_"):
		return Type{Unknown, "application/vnd.ms-outlook", "an Outlook message (.msg)"}
	case has("WordDocument"):
		return Type{Office, DOC, "a Word 97-2003 document (.doc)"}
	case has("Workbook"), has("Book"):
		return Type{Office, XLS, "an Excel 97-2003 workbook (.xls)"}
	case has("PowerPoint Document"):
		return Type{Office, PPT, "a PowerPoint 97-2003 presentation (.ppt)"}
	}
	return Type{Unknown, "application/x-ole-storage", "an OLE compound file"}
}

// isText: no NUL and few control bytes; either valid UTF-8 (a cut at the end
// of a longer file allowed) or 8-bit text in a single-byte charset.
func isText(b []byte, truncated bool) bool {
	if len(b) == 0 {
		return false
	}
	control := 0
	for _, c := range b {
		switch {
		case c == 0:
			return false
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x1b:
			control++
		case c == 0x7f:
			control++
		}
	}
	if control*100 > len(b) {
		return false
	}
	if utf8.Valid(b) {
		return true
	}
	if truncated {
		// The sniffed window may end inside a character.
		for i := 1; i < utf8.UTFMax && i < len(b); i++ {
			if utf8.Valid(b[:len(b)-i]) {
				return true
			}
		}
	}
	// 8-bit text: mostly ASCII letters, the rest high bytes (é, ü, ...).
	high := 0
	for _, c := range b {
		if c >= 0x80 {
			high++
		}
	}
	return high*100 <= len(b)*30
}
