// Command faxsim runs the fax modem emulator on a pty and prints the tty's
// path: point a fax program (or mediagw fax send) at it. Received pages are
// written as PBM files into -out. With -call, the emulator is also a fax
// machine calling in: it rings until a Class 2/2.0 host answers (ATA) and
// sends the given PBM pages (1728 pels wide).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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
	call := flag.String("call", "", "comma-separated PBM pages (1728 wide, fine) a far machine sends to a Class 2/2.0 host that answers the RING")
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
	if *call != "" {
		var pages [][][]byte
		for _, f := range strings.Split(*call, ",") {
			rows, err := readPBM(f)
			if err != nil {
				fmt.Fprintln(os.Stderr, "faxsim:", err)
				os.Exit(1)
			}
			pages = append(pages, rows)
		}
		r.Caller = &modemsim.Caller{Pages: len(pages), Encode: func(i int, p t30.Params) ([]byte, error) {
			o := t4.Options{Encoding: t4.MH, EndOfPage: true, LSBFirst: true, MinLineBits: p.MinLineBits()}
			switch {
			case p.MMR:
				o.Encoding = t4.MMR
			case p.MR:
				o.Encoding, o.K = t4.MR, p.K()
			}
			var b bytes.Buffer
			_, err := t4.EncodePage(&b, 1728, func(y int) []byte { return pages[i][y] }, len(pages[i]), o)
			return b.Bytes(), err
		}}
	}
	path, m, err := modemsim.PTY(ctx, r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faxsim:", err)
		os.Exit(1)
	}
	fmt.Println(path)
	if *call != "" {
		// ring every 5 s until the host answers
		go func() {
			for len(m.Calls()) == 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(5 * time.Second):
				}
				m.Ring()
			}
			fmt.Println("answered: sending", *call)
		}()
	}
	<-ctx.Done()
}

// readPBM reads a raw (P4) PBM page 1728 pels wide.
func readPBM(name string) ([][]byte, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var f [3]string
	rest := data
	for i := 0; i < 3; {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) > 0 && rest[0] == '#' {
			if j := bytes.IndexByte(rest, '\n'); j >= 0 {
				rest = rest[j:]
				continue
			}
		}
		j := bytes.IndexAny(rest, " \t\r\n")
		if j < 0 {
			return nil, fmt.Errorf("%s: not a PBM file", name)
		}
		f[i], rest = string(rest[:j]), rest[j:]
		i++
	}
	w, _ := strconv.Atoi(f[1])
	h, _ := strconv.Atoi(f[2])
	if f[0] != "P4" || w != 1728 || h <= 0 || len(rest) < 1+h*w/8 {
		return nil, fmt.Errorf("%s: want a raw PBM (P4) 1728 pels wide", name)
	}
	rest = rest[1:]
	rows := make([][]byte, h)
	for y := range rows {
		rows[y] = rest[y*w/8 : (y+1)*w/8]
	}
	return rows, nil
}
