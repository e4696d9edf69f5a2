package examples_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/datamap"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the output blocks of docs/datamap.md")

const datamapDoc = "../docs/datamap.md"

// docBlock is a fenced block after a marker comment (<!-- map -->,
// <!-- mail -->, <!-- output -->): its text and the lines it spans.
type docBlock struct {
	kind       string
	text       string
	start, end int // lines of the content: [start, end)
}

func docBlocks(t *testing.T, lines []string) []docBlock {
	t.Helper()
	var out []docBlock
	for i := 0; i < len(lines); i++ {
		kind, ok := strings.CutPrefix(lines[i], "<!-- ")
		if !ok || !strings.HasSuffix(kind, " -->") {
			continue
		}
		kind = strings.TrimSuffix(kind, " -->")
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("%s:%d: marker %q is not followed by a fenced block", datamapDoc, i+1, kind)
		}
		b := docBlock{kind: kind, start: i + 2}
		j := b.start
		for j < len(lines) && lines[j] != "```" {
			j++
		}
		if j == len(lines) {
			t.Fatalf("%s:%d: unterminated block", datamapDoc, i+2)
		}
		b.end = j
		b.text = strings.Join(lines[b.start:b.end], "\n")
		out = append(out, b)
		i = j
	}
	return out
}

// TestDatamapDoc runs every worked example of docs/datamap.md: each map
// compiles, and `mediagw datamap try` (datamap.Try) prints, from "fields:"
// on, exactly the output shown after each mail.
func TestDatamapDoc(t *testing.T) {
	b, err := os.ReadFile(datamapDoc)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var (
		m       *datamap.Map
		mail    string
		outputs int
		replace = map[int]docBlock{}
		got     = map[int]string{}
	)
	for _, blk := range docBlocks(t, lines) {
		where := fmt.Sprintf("%s:%d", datamapDoc, blk.start)
		switch blk.kind {
		case "map":
			spec, err := datamap.Parse(where, []byte(blk.text))
			if err != nil {
				t.Fatalf("%v", err)
			}
			if m, err = datamap.Compile("doc", spec); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
		case "mail":
			mail = blk.text + "\n"
		case "output":
			if m == nil || mail == "" {
				t.Fatalf("%s: an output block needs a map and a mail above it", where)
			}
			var w bytes.Buffer
			err := datamap.Try(&w, m, []byte(mail))
			var rej *datamap.Rejection
			if err != nil && !errors.As(err, &rej) {
				t.Fatalf("%s: %v", where, err)
			}
			out := w.String()
			i := strings.Index(out, "fields:\n")
			if i < 0 {
				t.Fatalf("%s: no fields in\n%s", where, out)
			}
			out = strings.TrimSuffix(out[i:], "\n")
			outputs++
			if *updateDocs {
				replace[blk.start], got[blk.start] = blk, out
				continue
			}
			if out != blk.text {
				t.Errorf("%s: the output shown differs from what datamap try prints (go test ./examples -run DatamapDoc -update-docs)\n--- shown\n%s\n--- printed\n%s", where, blk.text, out)
			}
		default:
			t.Fatalf("%s: unknown marker %q", where, blk.kind)
		}
	}
	if outputs < 4 {
		t.Fatalf("%s: %d worked examples, want at least 4", datamapDoc, outputs)
	}
	if *updateDocs {
		var nl []string
		done := map[int]bool{}
		for i := 0; i < len(lines); {
			if blk, ok := replace[i]; ok && !done[i] {
				done[i] = true
				nl = append(nl, strings.Split(got[i], "\n")...)
				i = blk.end // the closing fence comes next
				continue
			}
			nl = append(nl, lines[i])
			i++
		}
		if err := os.WriteFile(datamapDoc, []byte(strings.Join(nl, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
