package o365_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mediagw/mediagw/plugin"
)

// connectProxy is a small HTTP CONNECT proxy that counts its tunnels.
type connectProxy struct {
	addr    string
	tunnels atomic.Int64
	mu      sync.Mutex
	targets map[string]int
}

func startConnectProxy(t *testing.T) *connectProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{addr: ln.Addr().String(), targets: map[string]int{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		p.tunnels.Add(1)
		p.mu.Lock()
		p.targets[r.Host]++
		p.mu.Unlock()
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		_, _ = conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		go func() {
			defer up.Close()
			defer conn.Close()
			go func() { _, _ = io.Copy(up, brw); up.Close() }()
			_, _ = io.Copy(conn, up)
		}()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

func TestProxyCONNECT(t *testing.T) {
	peers := startPeers(t)
	proxy := startConnectProxy(t)
	cfg := peers.config(t)
	cfg["proxy"] = "http://" + proxy.addr
	c := configure(t, cfg)
	if res := c.Test(context.Background()); res.Category != plugin.TestOK {
		t.Fatalf("Test through the proxy: %s %s (%s)", res.Category, res.Hint, res.Detail)
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if proxy.targets[peers.id.Host] == 0 || proxy.targets[peers.dc.Addr] == 0 {
		t.Fatalf("tunnels %v: want both the token endpoint %s and IMAP %s", proxy.targets, peers.id.Host, peers.dc.Addr)
	}
	// A proxy that is down is "unreachable".
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	cfg["proxy"] = "http://" + dead
	if res := configure(t, cfg).Test(context.Background()); res.Category != plugin.TestUnreachable {
		t.Fatalf("dead proxy: %s %s", res.Category, res.Detail)
	}
}

// startSOCKS5 is a minimal SOCKS5 server (no auth, CONNECT only).
func startSOCKS5(t *testing.T) (string, *sync.Map) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var targets sync.Map
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 262)
				if _, err := io.ReadFull(c, buf[:2]); err != nil || buf[0] != 5 {
					return
				}
				if _, err := io.ReadFull(c, buf[:buf[1]]); err != nil {
					return
				}
				c.Write([]byte{5, 0})
				if _, err := io.ReadFull(c, buf[:4]); err != nil || buf[1] != 1 {
					return
				}
				var host string
				switch buf[3] {
				case 1:
					io.ReadFull(c, buf[:4])
					host = net.IP(buf[:4]).String()
				case 3:
					io.ReadFull(c, buf[:1])
					n := int(buf[0])
					io.ReadFull(c, buf[:n])
					host = string(buf[:n])
				default:
					return
				}
				io.ReadFull(c, buf[:2])
				addr := net.JoinHostPort(host, itoa(int(buf[0])<<8|int(buf[1])))
				up, err := net.Dial("tcp", addr)
				if err != nil {
					c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
					return
				}
				defer up.Close()
				targets.Store(addr, true)
				c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
				go func() { _, _ = io.Copy(up, c); up.Close() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String(), &targets
}

func TestProxySOCKS5(t *testing.T) {
	peers := startPeers(t)
	addr, targets := startSOCKS5(t)
	cfg := peers.config(t)
	cfg["proxy"] = "socks5://" + addr
	if res := configure(t, cfg).Test(context.Background()); res.Category != plugin.TestOK {
		t.Fatalf("Test through SOCKS5: %s %s (%s)", res.Category, res.Hint, res.Detail)
	}
	for _, want := range []string{peers.id.Host, peers.dc.Addr} {
		if _, ok := targets.Load(want); !ok {
			t.Errorf("no SOCKS5 tunnel to %s", want)
		}
	}
}
