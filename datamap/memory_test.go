package datamap

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// bigMail builds a message with a text body and one attachment of n random
// bytes, base64-encoded in 76-column lines as mail clients write it.
func bigMail(mediaType, name string, n int, body string) []byte {
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if strings.Contains(mediaType, "pdf") {
		copy(data, "%PDF-1.7\n")
	}
	var b bytes.Buffer
	b.Grow(n*4/3 + n/38 + 4096)
	b.WriteString("From: Scanner <scanner@office.example>\r\nTo: +12015551234@fax.example.com\r\nSubject: big\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BIG\"\r\n\r\n--BIG\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n--BIG\r\n" +
		fmt.Sprintf("Content-Type: %s\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n", mediaType, name))
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--BIG--\r\n")
	return b.Bytes()
}

// allocated reports the bytes allocated while f runs.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestBoundedMemory20MB maps a mail with a 20 MB attachment and measures what
// Apply allocates: about twice the attachment when it is delivered, almost
// nothing when it is not, and the limit rejects it without reading it all.
func TestBoundedMemory20MB(t *testing.T) {
	const size = 20 << 20
	pdf := bigMail("application/pdf", "big.pdf", size, "See attached.")
	fax := exampleMap(t, "email-to-fax")
	alarm := exampleMap(t, "alarm")

	var res *Result
	var err error
	got := allocated(func() { res, err = fax.Apply(pdf) })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Documents) != 1 || len(res.Documents[0].Data) != size {
		t.Fatalf("documents: %d", len(res.Documents))
	}
	t.Logf("20 MB attachment delivered: %.1f MB allocated (%.2f x)", float64(got)/(1<<20), float64(got)/size)
	if got > 5*size/2 {
		t.Errorf("delivering a 20 MB attachment allocated %d bytes, want < 2.5 x its size", got)
	}

	// The alarm map does not deliver PDFs: the attachment is streamed past.
	got = allocated(func() { _, err = alarm.Apply(pdf) })
	t.Logf("20 MB attachment skipped: %.2f MB allocated", float64(got)/(1<<20))
	if got > 2<<20 {
		t.Errorf("skipping a 20 MB attachment allocated %d bytes, want < 2 MB", got)
	}

	// A limit below the size rejects the mail and reads at most the limit.
	spec := fax.Spec()
	spec.Limits.MaxDocumentBytes = 1 << 20
	small, cerr := Compile("small", spec)
	if cerr != nil {
		t.Fatal(cerr)
	}
	got = allocated(func() { _, err = small.Apply(pdf) })
	if err == nil || !strings.Contains(err.Error(), "documents: big.pdf (part 2, 20971520 bytes) is larger than the limit of 1048576 bytes") {
		t.Errorf("err = %v", err)
	}
	if got > 4<<20 {
		t.Errorf("rejecting a too large attachment allocated %d bytes, want < 4 MB", got)
	}
}

// TestBoundedMemoryHugeText: a text body is cut at max_text_bytes (1 MiB),
// so what mapping costs does not grow with the body: a 20 MB body costs
// about what a 2 MB body costs.
func TestBoundedMemoryHugeText(t *testing.T) {
	m := exampleMap(t, "alarm")
	cost := func(size int) uint64 {
		body := "123588 BA 1 1\r\n" + strings.Repeat("filler text that a broken panel keeps sending\r\n", size/47)
		raw := []byte("From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\n\r\n" + body)
		var res *Result
		var err error
		got := allocated(func() { res, err = m.Apply(raw) })
		if err != nil {
			t.Fatal(err)
		}
		if res.Value("txid") != "123588" {
			t.Fatalf("txid = %q", res.Value("txid"))
		}
		if !strings.Contains(strings.Join(res.Message.Warnings, "\n"), "truncated") {
			t.Errorf("no truncation warning: %q", res.Message.Warnings)
		}
		return got
	}
	small, big := cost(2<<20), cost(20<<20)
	t.Logf("text body: 2 MB costs %.1f MB, 20 MB costs %.1f MB", float64(small)/(1<<20), float64(big)/(1<<20))
	if big > small*3/2 {
		t.Errorf("a 20 MB body allocated %d bytes, a 2 MB body %d: cost grows with the body", big, small)
	}
}
