package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoPostgres is returned by StartPostgres when PostgreSQL's server
// programs (initdb, postgres) are not installed.
var ErrNoPostgres = errors.New("PostgreSQL's server programs (initdb, postgres) are not installed: apt-get install postgresql")

// PostgresBinDirEnv names the folder of initdb and postgres when they are
// not where Debian puts them.
const PostgresBinDirEnv = "MEDIAGW_PG_BINDIR"

// Postgres is a throwaway PostgreSQL cluster: initdb into a temporary
// folder, a server on a free loopback port, removed by Stop. As root, the
// server runs as the user postgres (PostgreSQL refuses root).
type Postgres struct {
	dir  string
	bin  string
	port int
	cred *syscall.Credential
	cmd  *exec.Cmd
	exit chan struct{}
	log  strings.Builder
}

func postgresBinDir() (string, error) {
	if dir := os.Getenv(PostgresBinDirEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
			return "", fmt.Errorf("%w (%s=%s has no initdb)", ErrNoPostgres, PostgresBinDirEnv, dir)
		}
		return dir, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		return filepath.Dir(m[len(m)-1]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNoPostgres
}

// StartPostgres makes a new cluster and starts its server.
func StartPostgres(ctx context.Context) (*Postgres, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mediagw-demo-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, and there is no user postgres to run the server (the Debian package postgresql makes it)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if out, err := p.command("initdb", "-D", p.data(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("postgres: initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	p.cmd = p.command("postgres", "-D", p.data(), "-p", strconv.Itoa(p.port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+dir, "-c", "log_min_messages=warning")
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	p.cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT // the server goes with the demo
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("postgres: %w", err)
	}
	p.exit = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.exit) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := p.command("pg_isready", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port)).Run(); err == nil {
			break
		}
		select {
		case <-p.exit:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres exited: %s", p.log.String())
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("postgres did not start within 30 s")
		}
	}
	if out, err := p.command("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "postgres", "mediagw").CombinedOutput(); err != nil {
		p.Stop()
		return nil, fmt.Errorf("postgres: createdb: %v\n%s", err, out)
	}
	return p, nil
}

func (p *Postgres) data() string { return filepath.Join(p.dir, "data") }

func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	cmd.Env = []string{"PATH=" + p.bin + ":/usr/bin:/bin", "LC_ALL=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	return cmd
}

// DSN is the connection string of the demo's database.
func (p *Postgres) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/mediagw?sslmode=disable", p.port)
}

// Stop shuts the server down and removes the cluster.
func (p *Postgres) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.exit:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exit
		}
	}
	os.RemoveAll(p.dir)
}
