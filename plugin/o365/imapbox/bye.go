package imapbox

import (
	"bytes"
	"net"
	"strings"
	"sync"
)

// Exchange Online ends a session whose access token expired with an
// untagged "* BYE Session invalidated - AccessTokenExpired". go-imap drops
// the text of an untagged BYE, so byeConn watches what the server sends and
// keeps it.
const tokenExpiredBye = "AccessTokenExpired"

// byeConn passes a connection through, noting the text of the last untagged
// BYE the server sent. It follows IMAP's line and literal structure
// ("{n}\r\n" followed by n bytes), so the contents of a message cannot pose
// as a BYE.
type byeConn struct {
	net.Conn
	sc byeScanner

	mu  sync.Mutex
	bye string
}

func (c *byeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if text, ok := c.sc.feed(p[:n]); ok {
			c.mu.Lock()
			c.bye = text
			c.mu.Unlock()
		}
	}
	return n, err
}

// Bye is the text of the last untagged BYE ("" when none came).
func (c *byeConn) Bye() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bye
}

// byeScanner finds untagged BYE responses in a stream of server data.
type byeScanner struct {
	literal int64  // bytes of literal data still to skip
	head    []byte // start of the current line (up to maxHead bytes)
	tail    []byte // end of the current line (up to maxTail bytes), for "{n}"
}

const (
	maxHead = 512
	maxTail = 24
)

// feed scans data and returns the text of the last BYE line that ended in it.
func (s *byeScanner) feed(data []byte) (bye string, found bool) {
	for len(data) > 0 {
		if s.literal > 0 {
			k := int64(len(data))
			if k > s.literal {
				k = s.literal
			}
			s.literal -= k
			data = data[k:]
			continue
		}
		i := bytes.IndexByte(data, '\n')
		chunk := data
		if i >= 0 {
			chunk = data[:i]
		}
		if room := maxHead - len(s.head); room > 0 {
			s.head = append(s.head, chunk[:min(room, len(chunk))]...)
		}
		s.tail = append(s.tail, chunk...)
		if len(s.tail) > maxTail {
			s.tail = append(s.tail[:0], s.tail[len(s.tail)-maxTail:]...)
		}
		if i < 0 {
			return bye, found
		}
		data = data[i+1:]
		if text, ok := byeText(s.head); ok {
			bye, found = text, true
		}
		s.literal = literalSize(bytes.TrimSuffix(s.tail, []byte("\r")))
		s.head, s.tail = s.head[:0], s.tail[:0]
	}
	return bye, found
}

// byeText returns the text of an untagged BYE line.
func byeText(line []byte) (string, bool) {
	l := strings.TrimRight(string(line), "\r")
	if len(l) < 5 || !strings.EqualFold(l[:5], "* BYE") || (len(l) > 5 && l[5] != ' ') {
		return "", false
	}
	return strings.TrimSpace(l[5:]), true
}

// literalSize reads a line ending "{n}" or "{n+}" (a literal follows): n, or 0.
func literalSize(end []byte) int64 {
	if len(end) < 3 || end[len(end)-1] != '}' {
		return 0
	}
	end = bytes.TrimSuffix(end[:len(end)-1], []byte("+"))
	open := bytes.LastIndexByte(end, '{')
	if open < 0 || open == len(end)-1 {
		return 0
	}
	var n int64
	for _, c := range end[open+1:] {
		if c < '0' || c > '9' || n > 1<<40 {
			return 0
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// isTokenExpired reports whether a BYE's text says the access token expired.
func isTokenExpired(bye string) bool {
	return strings.Contains(strings.ToLower(bye), strings.ToLower(tokenExpiredBye))
}
