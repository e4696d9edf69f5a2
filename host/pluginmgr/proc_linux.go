package pluginmgr

import (
	"os/exec"
	"syscall"
)

// dieWithHost asks the kernel to send the plugin SIGTERM when the host dies,
// kill -9 included. The signal follows the thread that forked, not the
// process; Go ends a thread only when a goroutine locked to it exits, and
// the SDK's watch on its parent covers that case too.
func dieWithHost(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
