// Package examples holds the runnable example configurations, data maps and
// sample mails. They are embedded so that `mediagw-demo` runs on a fresh
// machine with nothing else in place.
package examples

import "embed"

// FS holds the examples as they are in this folder.
//
//go:embed maildir-to-file.yaml alarm-email-to-dc09.yaml maps/*.yaml mail/*.eml samples/alarm-*.eml
var FS embed.FS
