package linedriver

import (
	"context"
	"time"
)

// Receiver is a driver that also takes calls in: a fax modem that answers.
// The host calls Receive once, when the driver starts, if the driver's
// configuration asks for receiving; it returns when ctx ends.
type Receiver interface {
	Receive(ctx context.Context, in Inbound) error
}

// Inbound takes what a Receiver receives, one call at a time per line. The
// host implements it: it keeps each page durably and, when the call ends,
// turns the pages into a record routed like any other.
//
// The contract that makes a received fax survive a crash: Page returns only
// once the page is on disk, and the Receiver confirms a page to the far end
// (MCF) only after Page returned nil. A Page error makes the receiver refuse
// the page (the far end may send it again) or end the call.
type Inbound interface {
	// Begin is called when a call was answered and the far end announced a
	// document (after its DCS). An error refuses the call (DCN).
	Begin(ctx context.Context, call *Call) error
	// Page stores page n (1-based) of call.
	Page(ctx context.Context, call *Call, n int, page *InboundPage) error
	// End is called once per Begin when the call is over: err is nil when
	// the far end ended the document properly (EOP confirmed), else why the
	// call was cut (the pages stored so far are kept and delivered).
	End(ctx context.Context, call *Call, err error) error
}

// Call describes one incoming call.
type Call struct {
	ID           string    // unique, chosen by the receiver (time + random)
	Driver       string    // the receiving driver's name
	Device       string    // the line (modem) that answered
	CalledNumber string    // the number dialled (DID / called-party number), when the line reports it
	CallerNumber string    // the caller's number (caller id), when reported
	RemoteID     string    // the far end's station id (TSI), trimmed
	Started      time.Time // when the call was answered
	// Params describe the document as negotiated ("V.17 14400, fine, MMR, ECM").
	Params string
	// Log is the call's T.30 log so far, for the job's page in the console.
	Log string
}

// InboundPage is one received page, decoded.
type InboundPage struct {
	Width, Height int     // pels per row, rows
	XRes, YRes    float64 // dots per inch: 204×98 (standard), 204×196 (fine), …
	// Rows holds Height rows of (Width+7)/8 bytes, most significant bit
	// first, 1 = black.
	Rows [][]byte
	// BadRows counts rows the receiver could not decode and repeated from
	// the row above (copy quality); 0 with ECM.
	BadRows int
	// FramesLost counts ECM frames the sender gave up resending (EOR): the
	// page was kept without them, so rows may be missing from the first
	// gap on.
	FramesLost int
}
