// Command faxsim runs the fax modem emulator on a pty and prints the tty's
// path: point a fax program (or mediagw fax send) at it. Received pages are
// written as PBM files into -out.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/mediagw/mediagw/linedriver/faxmodem/modemsim"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

func main() {
	dial := flag.String("dial", "", `answer to ATD: "" (a fax answers), BUSY, NO CARRIER, NO DIALTONE, NO ANSWER, silent`)
	first := flag.String("dial-first", "", `comma-separated answers to the first dials, in order (e.g. "BUSY,BUSY"), before -dial applies; "ok" is a fax answering`)
	ftt := flag.Int("ftt-above", 0, "fail training above this bit rate")
	out := flag.String("out", ".", "directory for received pages (page-N.pbm)")
	ecm := flag.Bool("ecm", false, "offer error correction mode and MMR in the DIS")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	n := 0
	var dialFirst []string
	if *first != "" {
		for _, a := range strings.Split(*first, ",") {
			if strings.EqualFold(a, "ok") {
				a = ""
			}
			dialFirst = append(dialFirst, a)
		}
	}
	r := modemsim.Remote{Dial: *dial, DialFirst: dialFirst, FTTAbove: *ftt,
		OnDrop: func() { fmt.Println("call dropped: the port was closed during the call") },
		Decode: func(data []byte, p t30.Params) ([][]byte, error) {
			o := t4.Options{Encoding: t4.MH, LSBFirst: true}
			switch {
			case p.MMR:
				o.Encoding = t4.MMR
			case p.MR:
				o.Encoding, o.K = t4.MR, p.K()
			}
			return t4.DecodePage(bytes.NewReader(data), 1728, o, 10000)
		},
		OnPage: func(p modemsim.Page) {
			n++
			name := filepath.Join(*out, fmt.Sprintf("page-%d.pbm", n))
			var b bytes.Buffer
			fmt.Fprintf(&b, "P4\n1728 %d\n", len(p.Rows))
			for _, row := range p.Rows {
				b.Write(row)
			}
			if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "faxsim:", err)
			}
			fmt.Printf("received page %d: %d rows at %s (%v) -> %s\n", n, len(p.Rows), p.Params, p.Err, name)
		}}
	if *ecm {
		r.Caps = &t30.Caps{CanReceive: true, V17: true, V29: true, V27ter: true, Fine: true, MR: true, ECM: true, MMR: true}
	}
	path, _, err := modemsim.PTY(ctx, r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faxsim:", err)
		os.Exit(1)
	}
	fmt.Println(path)
	<-ctx.Done()
}
