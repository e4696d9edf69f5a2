// Package activity names the events of a message's life in the gateway and
// writes them to the log in one shape: event=..., plus ids and a reason.
// Operators grep for these; tests count them. A Hub turns the same lines
// into Events for live views (the console's activity feed) and metrics.
package activity

import (
	"context"
	"log/slog"
)

// Event names, in the order a message meets them.
const (
	Received   = "received"    // a connector offered a message
	Duplicate  = "duplicate"   // the source id was already accepted; acked again
	Mapped     = "mapped"      // the data map produced a record
	Routed     = "routed"      // the record was routed to drivers
	Accepted   = "accepted"    // the spool holds the jobs; the message is acked
	Rejected   = "rejected"    // no driver can ever take it; the source moves it aside
	Deferred   = "deferred"    // the host could not take it now; the source keeps it
	Attempt    = "attempt"     // a driver starts a delivery attempt
	Progress   = "progress"    // a step within an attempt
	Retried    = "retried"     // an attempt failed for now; another is scheduled
	Delivered  = "delivered"   // a driver finished a job
	Failed     = "failed"      // a driver gave up on a job for good
	Requeued   = "requeued"    // an operator put a failed job back in the queue
	Purged     = "purged"      // an operator removed a job
	Pruned     = "pruned"      // failed jobs older than spool.failed_retention were removed
	ReportSent = "report_sent" // a delivery report went back to the sender

	// A received fax: the call, each page on disk, the fax in the spool.
	Incoming     = "incoming"      // a line answered a fax call
	PageReceived = "page_received" // a received page is on disk (before the far end hears it was received)
	FaxReceived  = "fax_received"  // the received pages became a record in the spool, routed
)

// Log writes one activity line at info level (warn for failures).
func Log(l *slog.Logger, event string, attrs ...slog.Attr) {
	level := slog.LevelInfo
	switch event {
	case Rejected, Failed, Deferred, Retried:
		level = slog.LevelWarn
	}
	l.LogAttrs(context.Background(), level, event, append([]slog.Attr{slog.String("event", event)}, attrs...)...)
}
