package report

import (
	"net/mail"
	"strings"

	"github.com/mediagw/mediagw/linedriver"
)

// Suppressed says why a message must not be answered, or "" when it may
// be. It is the loop guard of RFC 3834: never answer a machine, never
// answer ourselves. own are the gateway's own addresses (the report's From,
// the notify section's ignore_senders).
func Suppressed(o *linedriver.Origin, own []string) string {
	if o == nil {
		return "no message header to answer"
	}
	if o.Report != "" {
		return "the message is a delivery report of this gateway (X-Mediagw-Report)"
	}
	if v := strings.ToLower(strings.TrimSpace(o.AutoSubmitted)); v != "" && !strings.HasPrefix(v, "no") {
		return "the message was sent automatically (Auto-Submitted: " + o.AutoSubmitted + ")"
	}
	switch strings.ToLower(strings.TrimSpace(o.Precedence)) {
	case "bulk", "list", "junk":
		return "the message is bulk or list mail (Precedence: " + o.Precedence + ")"
	}
	if o.ListID != "" {
		return "the message came from a mailing list (List-Id)"
	}
	if strings.TrimSpace(o.ReturnPath) == "<>" {
		return "the message has an empty Return-Path (a bounce)"
	}
	for _, a := range []string{o.From, o.ReplyTo} {
		if a == "" {
			continue
		}
		local, _, _ := strings.Cut(strings.ToLower(a), "@")
		switch {
		case local == "mailer-daemon", local == "postmaster", strings.HasPrefix(local, "owner-"), strings.HasSuffix(local, "-request"):
			return "the sender " + a + " is a mail system, not a person"
		}
		for _, own := range own {
			if sameAddress(a, own) {
				return "the sender " + a + " is the gateway itself"
			}
		}
	}
	if o.From == "" && o.ReplyTo == "" {
		return "the message names no sender"
	}
	return ""
}

// sameAddress compares two addresses, the domain without regard to case.
func sameAddress(a, b string) bool {
	return normAddress(a) == normAddress(b)
}

func normAddress(a string) string {
	if p, err := mail.ParseAddress(a); err == nil {
		a = p.Address
	}
	return strings.ToLower(strings.TrimSpace(a))
}
