package host

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/datamap"
	"github.com/mediagw/mediagw/linedriver"
)

// TestMapperCarriesSkipsAndWarnings: what the map skipped and its warnings
// about the documents reach the record the drivers and the spool see.
func TestMapperCarriesSkipsAndWarnings(t *testing.T) {
	spec, err := datamap.Parse("m.yaml", []byte(`
unsupported: skip
fields: [{name: sender, from: [{source: from.address}], default: ""}]
documents: [{types: ["image/*"]}, {body: true}]
routes: [{drivers: [fax]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := datamap.Compile("m", spec)
	if err != nil {
		t.Fatal(err)
	}
	raw := "From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the archive \ue000\r\n" +
		"--B\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=a.zip\r\n\r\nPK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\r\n--B--\r\n"
	mapped, err := dataMap{m}.Map([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(mapped.Skipped) != 1 || mapped.Skipped[0].Name != "a.zip" || mapped.Skipped[0].Type != "application/zip" {
		t.Errorf("skipped %+v", mapped.Skipped)
	}
	if len(mapped.Warnings) != 1 || !strings.Contains(mapped.Warnings[0], "U+E000") {
		t.Errorf("warnings %q", mapped.Warnings)
	}
	// They survive the spool's JSON.
	rec := linedriver.Record{Skipped: mapped.Skipped, Warnings: mapped.Warnings}
	b, _ := json.Marshal(rec)
	var back linedriver.Record
	if err := json.Unmarshal(b, &back); err != nil || len(back.Skipped) != 1 || back.Skipped[0].Reason == "" || len(back.Warnings) != 1 {
		t.Errorf("JSON round trip: %s", b)
	}
}
