package faxmodem

import (
	"errors"
	"fmt"
	"strings"
)

// Record fields that override the driver's options for one fax.
const (
	FieldECM      = "fax_ecm"      // auto, on, off
	FieldEncoding = "fax_encoding" // mh, mr, mmr
	// FieldECMFallback: after four PPRs for one block, "speed" (default)
	// lowers the speed with CTC and goes on correcting; "eor" ends the
	// retransmission with EOR at once (the far end keeps the page without
	// the frames still in error): a fax that must not take longer.
	FieldECMFallback = "fax_ecm_fallback"
)

// ErrJobOption is a record field that sets a fax option to a value the
// driver does not know; Check refuses such a record at intake.
var ErrJobOption = errors.New("faxmodem: invalid fax option in the record")

// jobOptions are the options of one fax: the driver's, with the record's
// fax_ecm and fax_encoding over them.
type jobOptions struct {
	ECM      string // auto, on, off
	Encoding string // "" (the best the far end takes), mh, mr, mmr
	EOR      bool   // fax_ecm_fallback: eor
}

// jobOptionsOf reads the record's overrides; an empty field keeps the
// driver's option.
func (d *Driver) jobOptionsOf(fields map[string]string) (jobOptions, error) {
	jo := jobOptions{ECM: strings.ToLower(d.opts.ECM), Encoding: strings.ToLower(d.opts.Encoding)}
	if v := strings.ToLower(strings.TrimSpace(fields[FieldECM])); v != "" {
		switch v {
		case "auto", "on", "off":
			jo.ECM = v
		default:
			return jo, fmt.Errorf("%w: %s %q (want auto, on or off)", ErrJobOption, FieldECM, fields[FieldECM])
		}
	}
	if v := strings.ToLower(strings.TrimSpace(fields[FieldEncoding])); v != "" {
		switch v {
		case "mh", "mr", "mmr":
			jo.Encoding = v
		default:
			return jo, fmt.Errorf("%w: %s %q (want mh, mr or mmr)", ErrJobOption, FieldEncoding, fields[FieldEncoding])
		}
	}
	if v := strings.ToLower(strings.TrimSpace(fields[FieldECMFallback])); v != "" {
		switch v {
		case "speed":
		case "eor":
			jo.EOR = true
		default:
			return jo, fmt.Errorf("%w: %s %q (want speed or eor)", ErrJobOption, FieldECMFallback, fields[FieldECMFallback])
		}
	}
	return jo, nil
}
