// Package demo holds the files of `mediagw-demo`: its configuration, its
// data maps and the sample mails it puts into the mailbox.
package demo

import "embed"

// FS holds mediagw.yaml, the alarm demo's alarm-dc09.yaml and
// alarm-surgard.yaml, maps/ and mail/.
//
//go:embed mediagw.yaml alarm-dc09.yaml alarm-surgard.yaml maps/*.yaml mail/*.eml
var FS embed.FS
