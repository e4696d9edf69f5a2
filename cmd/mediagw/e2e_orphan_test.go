package main_test

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// alive reports whether pid is a running process; a zombie (dead, not yet
// reaped by whoever adopted it) is not.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil && !os.IsNotExist(err)
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	st := b[i+2]
	return st != 'Z' && st != 'X'
}

// A plugin never outlives its host: after kill -9 of the real mediagw
// binary, idle or busy, its Maildir connector ends within seconds (it used
// to live on under process 1).
func TestPluginDiesWithHost(t *testing.T) {
	for _, tc := range []struct {
		name string
		mail int
	}{{"idle", 0}, {"busy", 300}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			for i := range tc.mail {
				s.drop(fmt.Sprintf("m%04d.eml", i), mail(i))
			}
			g := s.start()
			pid := g.pluginPid(t)
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			if tc.mail > 0 {
				waitFor(t, "some messages archived", 60*time.Second, func() bool { return len(s.archive()) > 0 }, g.logText)
			}
			if !alive(pid) {
				t.Fatalf("plugin %d not running before the host is killed", pid)
			}
			g.cmd.Process.Signal(syscall.SIGKILL)
			<-g.done
			killed := time.Now()
			waitFor(t, "the plugin to end with its host", 10*time.Second, func() bool { return !alive(pid) }, g.logText)
			t.Logf("plugin gone %v after kill -9 of the host", time.Since(killed).Round(10*time.Millisecond))
		})
	}
}
