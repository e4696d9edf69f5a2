package o365test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
)

// IMAPProxy sits between an IMAP client and Dovecot (TLS on both sides) and
// can end every session the way Exchange Online does, with an untagged BYE
// Dovecot cannot send (Bye). It records the bearer tokens clients log in
// with. Inject a BYE only while the sessions are quiet (idling): the proxy
// writes it between the server's chunks, not between its lines.
type IMAPProxy struct {
	Addr string // 127.0.0.1:port, TLS with the CA's certificate

	upstream string
	ca       *CA
	ln       net.Listener

	mu     sync.Mutex
	conns  map[*proxyConn]bool
	tokens []string
	wg     sync.WaitGroup
}

type proxyConn struct {
	client, server net.Conn
	wmu            sync.Mutex // writes to client
}

// StartIMAPProxy listens on a free 127.0.0.1 port and relays to upstream
// (a Dovecot's IMAPS address), trusting ca on both sides.
func StartIMAPProxy(upstream string, ca *CA) (*IMAPProxy, error) {
	conf, err := ca.ServerTLS()
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		return nil, fmt.Errorf("o365test: proxy listen: %w", err)
	}
	p := &IMAPProxy{Addr: ln.Addr().String(), upstream: upstream, ca: ca, ln: ln, conns: map[*proxyConn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *IMAPProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := tls.Dial("tcp", p.upstream, &tls.Config{RootCAs: p.ca.Pool, ServerName: "127.0.0.1"})
		if err != nil {
			c.Close()
			continue
		}
		pc := &proxyConn{client: c, server: s}
		p.mu.Lock()
		p.conns[pc] = true
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { // server → client
			defer p.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 {
					pc.wmu.Lock()
					_, werr := c.Write(buf[:n])
					pc.wmu.Unlock()
					if werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			p.drop(pc)
		}()
		go func() { // client → server, noting XOAUTH2 tokens
			defer p.wg.Done()
			r := bufio.NewReader(io.TeeReader(c, s))
			for {
				line, err := r.ReadBytes('\n')
				if tok := bearer(line); tok != "" {
					p.mu.Lock()
					p.tokens = append(p.tokens, tok)
					p.mu.Unlock()
				}
				if err != nil {
					break
				}
			}
			p.drop(pc)
		}()
	}
}

// bearer finds the token in a line carrying an XOAUTH2 initial response
// ("a1 AUTHENTICATE XOAUTH2 <base64>") or a bare continuation ("<base64>").
func bearer(line []byte) string {
	f := bytes.Fields(line)
	if len(f) == 0 {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(string(f[len(f)-1]))
	if err != nil {
		return ""
	}
	for _, part := range strings.Split(string(raw), "\x01") {
		if tok, ok := strings.CutPrefix(part, "auth=Bearer "); ok {
			return tok
		}
	}
	return ""
}

func (p *IMAPProxy) drop(pc *proxyConn) {
	pc.client.Close()
	pc.server.Close()
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// Bye sends "* BYE text" to every client and ends its session; it returns
// how many sessions it ended.
func (p *IMAPProxy) Bye(text string) int {
	p.mu.Lock()
	conns := make([]*proxyConn, 0, len(p.conns))
	for pc := range p.conns {
		conns = append(conns, pc)
	}
	p.mu.Unlock()
	for _, pc := range conns {
		pc.wmu.Lock()
		_, _ = pc.client.Write([]byte("* BYE " + text + "\r\n"))
		pc.wmu.Unlock()
		p.drop(pc)
	}
	return len(conns)
}

// Sessions is how many sessions are open.
func (p *IMAPProxy) Sessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Tokens lists the bearer tokens clients logged in with, in order.
func (p *IMAPProxy) Tokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.tokens...)
}

// Close stops the proxy and ends every session.
func (p *IMAPProxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	conns := make([]*proxyConn, 0, len(p.conns))
	for pc := range p.conns {
		conns = append(conns, pc)
	}
	p.mu.Unlock()
	for _, pc := range conns {
		p.drop(pc)
	}
	p.wg.Wait()
	return err
}
