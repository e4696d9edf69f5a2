// Package pgtest starts private PostgreSQL clusters for tests: initdb into a
// temporary folder, a postgres server on a free loopback port (and a Unix
// socket in that folder), stopped when the test ends. It uses Debian's
// postgresql package (initdb and postgres under the folder pg_config
// names, or on PATH). Where they are missing the test is skipped, which
// fails in CI (internal/testenv).
//
// Run as root, the server runs as the system user "postgres" (PostgreSQL
// refuses root), which owns the cluster's folder.
package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
)

// Server is a running private cluster.
type Server struct {
	t    testing.TB
	dir  string // the cluster's folder: data/ and the socket
	bin  string // the folder of initdb and postgres
	port int
	cred *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{}
	log  *testenv.Buffer
	dbs  int
}

// bindir finds the folder of the server programs.
func bindir(t testing.TB) string {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1])
	}
	return filepath.Dir(testenv.LookPath(t, "postgres"))
}

// Start makes a new cluster and starts its server; it is stopped (and its
// folder removed) when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: bindir(t), log: &testenv.Buffer{}}
	if _, err := os.Stat(filepath.Join(s.bin, "initdb")); err != nil {
		testenv.Skip(t, "PostgreSQL's initdb is not installed (Debian package postgresql)")
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s.dir = dir
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			testenv.Skip(t, "running as root and there is no user postgres to run the server (Debian package postgresql makes it)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	initdb := s.command(filepath.Join(s.bin, "initdb"), "-D", s.data(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	s.port = freePort(t)
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=" + s.bin + ":/usr/bin:/bin", "LC_ALL=C"}
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs the server and waits until it takes connections.
func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := s.command(filepath.Join(s.bin, "postgres"), "-D", s.data(), "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.dir,
		"-c", "max_connections=200", "-c", "shared_buffers=32MB", "-c", "log_min_messages=warning")
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// The server goes with the test process, even when it is killed.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("pgtest: start postgres: %v", err)
	}
	exit := make(chan struct{})
	go func() { cmd.Wait(); close(exit) }()
	s.cmd, s.exit = cmd, exit
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			c.Close()
			// Listening is not yet accepting logins while it recovers.
			if out, err := s.command(filepath.Join(s.bin, "pg_isready"), "-h", "127.0.0.1", "-p", strconv.Itoa(s.port)).CombinedOutput(); err == nil {
				return
			} else if time.Now().After(deadline) {
				s.t.Fatalf("pgtest: server not ready: %s\n%s", out, s.log.String())
			}
		}
		select {
		case <-exit:
			s.t.Fatalf("pgtest: postgres exited: %s", s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("pgtest: postgres did not listen within 30 s: %s", s.log.String())
		}
	}
}

func (s *Server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// stop ends the server with sig (SIGINT: fast shutdown, SIGQUIT: immediate,
// SIGKILL: crash) and waits for it.
func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exit:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exit
	}
	s.cmd = nil
}

// Stop shuts the server down (fast shutdown).
func (s *Server) Stop() { s.stop(syscall.SIGINT) }

// Restart stops the server and starts it again on the same port: clients
// see their connections cut, then the server back. With crash set, the
// server is killed (SIGKILL of the postmaster and immediate end of its
// children) and recovers from its WAL when it starts.
func (s *Server) Restart(crash bool) {
	s.t.Helper()
	if crash {
		s.stop(syscall.SIGKILL)
		// The children of a killed postmaster notice it and exit; wait
		// until the port is free before starting again.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(filepath.Join(s.data(), "postmaster.pid")); err != nil {
				break
			}
			c, err := net.DialTimeout("tcp", s.addr(), 100*time.Millisecond)
			if err != nil {
				break
			}
			c.Close()
			time.Sleep(50 * time.Millisecond)
		}
	} else {
		s.Stop()
	}
	s.start()
}

// Log is what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// DSN is the connection string of database db as user postgres.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", s.addr(), db)
}

// NewDB creates a new empty database and returns its DSN.
func (s *Server) NewDB(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	s.dbs++
	name := fmt.Sprintf("test%d", s.dbs)
	s.mu.Unlock()
	cmd := s.command(filepath.Join(s.bin, "createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", "postgres", name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgtest: createdb %s: %v\n%s", name, err, out)
	}
	return s.DSN(name)
}
