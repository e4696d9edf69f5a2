package report

// Explanation is a failure put in plain words, with what the sender can do.
type Explanation struct {
	Words  string
	Advice string
}

// explanations turns a line driver's failure category into words for the
// person who sent the mail. Categories not listed get the driver's own
// reason and the generic advice.
var explanations = map[string]Explanation{
	"busy": {"the line was busy every time we called",
		"Check the number, or send it again later, when the line is free."},
	"no_answer": {"nobody answered the call",
		"Check that the fax machine is switched on and connected, then send it again."},
	"no_carrier": {"the number answered, but not with a fax machine",
		"Check that the number is a fax number and not a telephone; ask the recipient for their fax number."},
	"not_fax": {"the number answered, but not with a fax machine",
		"Check that the number is a fax number and not a telephone; ask the recipient for their fax number."},
	"no_dialtone": {"our telephone line had no dial tone",
		"This is a problem on our side: contact the fax gateway's administrator."},
	"training_failed": {"the connection to the fax machine was too poor to send pages",
		"Send it again later; if it keeps failing, the recipient's line may be faulty."},
	"page_rejected": {"the receiving fax machine refused the pages",
		"Send it again; if it keeps failing, ask the recipient to check their machine (paper, memory)."},
	"protocol": {"the receiving fax machine stopped following the fax protocol",
		"Send it again later; if it keeps failing, ask the recipient to check their machine."},
	"remote_hangup": {"the receiving fax machine hung up during the call",
		"Send it again; if it keeps failing, ask the recipient to check their machine (paper, memory)."},
	"modem_not_responding": {"our fax modem did not respond",
		"This is a problem on our side: contact the fax gateway's administrator."},
	"no_modem": {"no fax modem of ours was available",
		"This is a problem on our side: contact the fax gateway's administrator."},
	"dial_policy": {"this gateway is not allowed to dial that number",
		"Check the number; international and premium-rate numbers may be blocked here. Ask the administrator if you need it."},
	"render": {"the documents could not be turned into fax pages",
		"Send the documents as PDF, TIFF, PNG, JPEG or plain text, and check that they open."},
	"encode": {"the documents could not be turned into fax pages",
		"Send the documents as PDF, TIFF, PNG, JPEG or plain text, and check that they open."},
	"cancelled": {"the fax was cancelled",
		"Send it again if it is still needed."},
	"io": {"the gateway could not write the result",
		"This is a problem on our side: contact the fax gateway's administrator."},
}

var genericAdvice = "Send it again later; if it keeps failing, contact the fax gateway's administrator."

// Explain returns the words and advice for a category; reason is the
// driver's own words, used when the category is not known.
func Explain(category, reason string) Explanation {
	if e, ok := explanations[category]; ok {
		return e
	}
	if reason == "" {
		reason = "the fax could not be sent"
	}
	return Explanation{Words: reason, Advice: genericAdvice}
}
