//go:build !linux

package pluginmgr

import "os/exec"

// dieWithHost has no parent-death signal outside Linux; the SDK's watch on
// its parent ends the plugin instead.
func dieWithHost(*exec.Cmd) {}
