package o365

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/net/proxy"
)

// dialFunc opens TCP connections, directly or through proxy u (HTTP CONNECT
// or SOCKS5).
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func newDialer(u *url.URL) (dialFunc, error) {
	direct := &net.Dialer{}
	if u == nil {
		return direct.DialContext, nil
	}
	switch u.Scheme {
	case "socks5", "socks5h":
		d, err := proxy.FromURL(u, direct)
		if err != nil {
			return nil, fmt.Errorf("o365: proxy: %w", err)
		}
		cd, ok := d.(proxy.ContextDialer)
		if !ok {
			return nil, errors.New("o365: proxy: SOCKS5 dialer without context support")
		}
		return cd.DialContext, nil
	case "http", "https":
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialConnect(ctx, direct, u, addr)
		}, nil
	}
	return nil, fmt.Errorf("o365: proxy: unsupported scheme %q", u.Scheme)
}

// dialConnect opens a tunnel to addr with HTTP CONNECT.
func dialConnect(ctx context.Context, d *net.Dialer, u *url.URL, addr string) (net.Conn, error) {
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("o365: proxy %s: %w", host, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: http.Header{}}
	if u.User != nil {
		pw, _ := u.User.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw)))
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("o365: proxy CONNECT: %w", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("o365: proxy CONNECT: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, fmt.Errorf("o365: proxy CONNECT %s: %s", addr, resp.Status)
	}
	_ = conn.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
