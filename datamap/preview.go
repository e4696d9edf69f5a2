package datamap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes the preview an operator reads when setting a map up:
// the message, its parts and warnings, every field with its value and where
// it came from, the documents and the route.
func (r *Result) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	msg := r.Message
	fmt.Fprintf(bw, "map: %s\n", r.Map)
	fmt.Fprintln(bw, "message:")
	fmt.Fprintf(bw, "  subject:    %s\n", quoteLine(msg.Subject))
	fmt.Fprintf(bw, "  from:       %s\n", strings.Join(msg.From, ", "))
	fmt.Fprintf(bw, "  to:         %s\n", strings.Join(msg.To, ", "))
	if len(msg.Cc) > 0 {
		fmt.Fprintf(bw, "  cc:         %s\n", strings.Join(msg.Cc, ", "))
	}
	fmt.Fprintf(bw, "  date:       %s\n", msg.Date)
	fmt.Fprintf(bw, "  message-id: %s\n", msg.MessageID)
	fmt.Fprintf(bw, "  body from:  %s\n", msg.BodySource)
	fmt.Fprintln(bw, "parts:")
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	for _, p := range msg.Parts {
		path := p.Path
		if path == "" {
			path = "-"
		}
		var extra []string
		if p.Charset != "" {
			extra = append(extra, "charset="+p.Charset)
		}
		if p.Encoding != "" {
			extra = append(extra, p.Encoding)
		}
		if p.Filename != "" {
			extra = append(extra, fmt.Sprintf("name=%q", p.Filename))
		}
		if p.Content != "" && p.Content != p.MediaType {
			extra = append(extra, "content="+p.Content)
		}
		if p.ContentID != "" {
			extra = append(extra, "cid")
		}
		size := ""
		if p.Role != "container" {
			size = fmt.Sprintf("%d bytes", p.Size)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", path, p.MediaType, p.Role, size, strings.Join(extra, " "))
	}
	tw.Flush()
	for _, l := range strings.SplitAfter(table.String(), "\n") {
		bw.WriteString(strings.TrimRight(l, " \n"))
		if l != "" {
			bw.WriteByte('\n')
		}
	}
	if len(msg.Warnings) > 0 {
		fmt.Fprintln(bw, "warnings:")
		for _, wn := range msg.Warnings {
			fmt.Fprintf(bw, "  - %s\n", wn)
		}
	}
	fmt.Fprintln(bw, "fields:")
	for _, f := range r.Fields {
		fmt.Fprintf(bw, "  %s (%s) = %s\n", f.Name, f.Type, indentValue(f.Value, "      "))
		fmt.Fprintf(bw, "      from %s by %s\n", f.Source, f.Rule)
	}
	fmt.Fprintln(bw, "documents:")
	if len(r.Documents) == 0 {
		fmt.Fprintln(bw, "  (none)")
	}
	for i, d := range r.Documents {
		fmt.Fprintf(bw, "  %d. %s  %s  %d bytes  from %s\n", i+1, quoteLine(d.Name), d.MediaType, len(d.Data), d.Source)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(bw, "  warning: %s\n", w)
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintln(bw, "skipped (unsupported: skip):")
		for _, sk := range r.Skipped {
			fmt.Fprintf(bw, "  - %s\n", quoteLine(sk.String()))
		}
	}
	if len(r.Routes) > 0 {
		fmt.Fprintf(bw, "route: %s (%s)\n", strings.Join(r.Routes, ", "), r.Route)
	} else {
		fmt.Fprintln(bw, "route: (none)")
	}
	return bw.Flush()
}

func quoteLine(s string) string {
	if strings.ContainsAny(s, "\n\r\t") || s == "" || strings.TrimSpace(s) != s {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// indentValue prints a multi-line value on following, indented lines.
func indentValue(v, indent string) string {
	if v == "" {
		return `""`
	}
	if !strings.Contains(v, "\n") {
		return quoteLine(v)
	}
	lines := strings.Split(v, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = indent + l
		}
	}
	return "|\n" + strings.Join(lines, "\n")
}

// Try applies m to raw and writes the preview, followed by the rejection if
// there is one. It returns the rejection (or other error) as well.
func Try(w io.Writer, m *Map, raw []byte) error {
	res, err := m.Apply(raw)
	if res != nil {
		if werr := res.WriteText(w); werr != nil {
			return werr
		}
	}
	var rej *Rejection
	if errors.As(err, &rej) {
		fmt.Fprintf(w, "REJECTED: %s\n", rej.Error())
	} else if err == nil {
		fmt.Fprintln(w, "OK")
	}
	return err
}
