// Package dc09rx is a DC-09 receiver for tests: it listens on TCP or UDP,
// checks each message's CRC, length, sequence and timestamp window,
// decrypts encrypted ones, and answers ACK — or NAK, DUH, nothing, or a
// closed connection when a test asks it to. It is written apart from the
// dc09 driver and shares no code with it, so that each checks the other.
package dc09rx

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Behaviour is how the receiver answers a message.
type Behaviour int

const (
	Ack    Behaviour = iota // acknowledge (the default)
	Nak                     // NAK with the receiver's time
	Duh                     // DUH: not understood
	Silent                  // no answer
	Hangup                  // close the connection without an answer (TCP)
)

// Signal is a message the receiver took (acknowledged).
type Signal struct {
	ID        string // SIA-DCS, ADM-CID, NULL
	Encrypted bool
	Seq       int
	Receiver  string
	Line      string
	Account   string
	Data      string   // first block's content, e.g. #1234|1130 01 003
	Ext       []string // extended blocks
	Time      time.Time
	Duplicate bool // same account and sequence as the message before
}

// Receiver answers DC-09 messages.
type Receiver struct {
	Key []byte           // AES key; nil: plain messages only
	Now func() time.Time // the receiver's clock; time.Now when nil
	// The timestamp window: a message more than Past old or Future ahead
	// of the receiver's clock is NAKed. Defaults: 40 s and 20 s (DC-09).
	Past, Future time.Duration

	mu      sync.Mutex
	plan    []Behaviour
	got     []Signal
	heard   []Signal
	rejects []error
	lastSeq map[string]int
	ln      net.Listener
	pc      net.PacketConn
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
	notify  chan struct{}
}

// Then makes the next messages get these behaviours, one each; after them
// the receiver acknowledges again.
func (r *Receiver) Then(b ...Behaviour) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plan = append(r.plan, b...)
}

// Signals returns what the receiver acknowledged so far.
func (r *Receiver) Signals() []Signal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Signal(nil), r.got...)
}

// Heard returns every message that parsed, answered or not.
func (r *Receiver) Heard() []Signal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Signal(nil), r.heard...)
}

// Rejects returns the reasons of messages the receiver refused.
func (r *Receiver) Rejects() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.rejects...)
}

// Changed is signalled (without blocking) after each message.
func (r *Receiver) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	return r.notify
}

func (r *Receiver) init() {
	if r.notify == nil {
		r.notify = make(chan struct{}, 1)
		r.lastSeq = map[string]int{}
		r.conns = map[net.Conn]bool{}
	}
}

// ListenTCP starts serving on addr ("127.0.0.1:0") and returns the address.
func (r *Receiver) ListenTCP(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("dc09rx: %w", err)
	}
	r.mu.Lock()
	r.init()
	r.ln = ln
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns[c] = true
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.serveConn(c)
			}()
		}
	}()
	return ln.Addr().String(), nil
}

// ListenUDP starts serving datagrams on addr and returns the address.
func (r *Receiver) ListenUDP(addr string) (string, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return "", fmt.Errorf("dc09rx: %w", err)
	}
	r.mu.Lock()
	r.init()
	r.pc = pc
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			reply, b := r.Handle(buf[:n])
			if b == Ack || b == Nak || b == Duh {
				pc.WriteTo(reply, from)
			}
		}
	}()
	return pc.LocalAddr().String(), nil
}

// Close stops listening and closes every connection.
func (r *Receiver) Close() error {
	r.mu.Lock()
	if r.ln != nil {
		r.ln.Close()
	}
	if r.pc != nil {
		r.pc.Close()
	}
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

func (r *Receiver) serveConn(c net.Conn) {
	defer func() {
		c.Close()
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadBytes('\r')
		if err != nil {
			return
		}
		reply, b := r.Handle(line)
		switch b {
		case Hangup:
			return
		case Silent:
			continue
		}
		if _, err := c.Write(reply); err != nil {
			return
		}
	}
}

// Handle checks one message and returns the answer and how it answered.
func (r *Receiver) Handle(raw []byte) ([]byte, Behaviour) {
	r.mu.Lock()
	r.init()
	b := Ack
	if len(r.plan) > 0 {
		b, r.plan = r.plan[0], r.plan[1:]
	}
	r.mu.Unlock()
	defer func() {
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}()

	s, err := r.Parse(raw)
	if err != nil {
		r.mu.Lock()
		r.rejects = append(r.rejects, err)
		r.mu.Unlock()
		var te *TimeError
		if errors.As(err, &te) {
			return r.answer("NAK", Signal{}, true), Nak
		}
		return r.answer("DUH", Signal{}, false), Duh
	}
	r.mu.Lock()
	k := s.Account + "/" + s.Receiver + "/" + s.Line
	if last, ok := r.lastSeq[k]; ok && last == s.Seq {
		s.Duplicate = true
	}
	r.lastSeq[k] = s.Seq
	r.heard = append(r.heard, s)
	r.mu.Unlock()
	switch b {
	case Nak:
		return r.answer("NAK", Signal{}, true), Nak
	case Duh:
		return r.answer("DUH", s, false), Duh
	case Silent, Hangup:
		return nil, b
	}
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
	return r.answer("ACK", s, true), Ack
}

func (r *Receiver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// answer makes a reply; ACK to an encrypted message is encrypted.
func (r *Receiver) answer(id string, s Signal, stamp bool) []byte {
	ts := ""
	if stamp {
		ts = r.now().UTC().Format("_15:04:05,01-02-2006")
	}
	acct := s.Account
	if acct == "" {
		acct = "0"
	}
	line := s.Line
	if line == "" {
		line = "0"
	}
	rcv := s.Receiver
	if rcv == "" && id == "NAK" {
		rcv = "0"
	}
	head := fmt.Sprintf("%04d", s.Seq)
	if rcv != "" {
		head += "R" + rcv
	}
	head += "L" + line + "#" + acct
	var body string
	if id == "ACK" && s.Encrypted && r.Key != nil {
		body = `"*ACK"` + head + "[" + sealHex(r.Key, "|]"+ts)
	} else {
		body = `"` + id + `"` + head + "[]" + ts
	}
	return []byte(fmt.Sprintf("\n%04X%04X%s\r", crc(body), len(body), body))
}

// TimeError is a message outside the timestamp window.
type TimeError struct{ Got, Now time.Time }

func (e *TimeError) Error() string {
	return fmt.Sprintf("dc09rx: timestamp %s outside the window around %s", e.Got.Format(time.RFC3339), e.Now.Format(time.RFC3339))
}

var headRE = regexp.MustCompile(`^"(\*?)([A-Z][A-Z-]*)"(\d{4})(?:R([0-9A-Fa-f]{1,6}))?L([0-9A-Fa-f]{1,6})#([0-9A-Fa-f]{3,16})\[`)

// Parse checks and reads one message.
func (r *Receiver) Parse(raw []byte) (Signal, error) {
	var s Signal
	m := string(raw)
	if !strings.HasPrefix(m, "\n") || !strings.HasSuffix(m, "\r") {
		return s, errors.New("dc09rx: not framed by LF … CR")
	}
	m = m[1 : len(m)-1]
	if len(m) < 9 {
		return s, errors.New("dc09rx: too short")
	}
	sum, err1 := strconv.ParseUint(m[:4], 16, 16)
	n, err2 := strconv.ParseUint(m[4:8], 16, 16)
	if err1 != nil || err2 != nil || m[4] != '0' {
		return s, fmt.Errorf("dc09rx: bad crc or length field %q", m[:8])
	}
	body := m[8:]
	if int(n) != len(body) {
		return s, fmt.Errorf("dc09rx: length field %d, message %d", n, len(body))
	}
	if c := crc(body); uint64(c) != sum {
		return s, fmt.Errorf("dc09rx: crc field %04X, message %04X", sum, c)
	}
	h := headRE.FindStringSubmatch(body)
	if h == nil {
		return s, fmt.Errorf("dc09rx: header not understood: %.40q", body)
	}
	s.Encrypted, s.ID = h[1] == "*", h[2]
	s.Seq, _ = strconv.Atoi(h[3])
	s.Receiver, s.Line, s.Account = h[4], h[5], h[6]
	switch s.ID {
	case "SIA-DCS", "ADM-CID", "NULL":
	default:
		return s, fmt.Errorf("dc09rx: token %q not supported", s.ID)
	}
	if s.Seq < 1 || s.Seq > 9999 {
		return s, fmt.Errorf("dc09rx: sequence %d outside 0001-9999", s.Seq)
	}
	rest := body[len(h[0]):]
	if s.Encrypted {
		if r.Key == nil {
			return s, errors.New("dc09rx: encrypted message but no key")
		}
		pt, err := open(r.Key, rest)
		if err != nil {
			return s, err
		}
		rest = pt
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return s, errors.New("dc09rx: data block not closed")
	}
	s.Data, rest = rest[:end], rest[end+1:]
	for strings.HasPrefix(rest, "[") {
		e := strings.IndexByte(rest, ']')
		if e < 0 {
			return s, errors.New("dc09rx: extended block not closed")
		}
		s.Ext, rest = append(s.Ext, rest[1:e]), rest[e+1:]
	}
	if rest == "" {
		if s.Encrypted {
			return s, errors.New("dc09rx: encrypted message without a timestamp")
		}
		return s, nil
	}
	clock, date, ok := strings.Cut(strings.TrimPrefix(rest, "_"), ",")
	t, err := time.Parse("01-02-2006 15:04:05", date+" "+clock)
	if err != nil || !ok || rest[0] != '_' {
		return s, fmt.Errorf("dc09rx: timestamp %q", rest)
	}
	s.Time = t
	now := r.now()
	past, future := r.Past, r.Future
	if past == 0 {
		past = 40 * time.Second
	}
	if future == 0 {
		future = 20 * time.Second
	}
	if t.Before(now.Add(-past)) || t.After(now.Add(future)) {
		return s, &TimeError{Got: t, Now: now}
	}
	if s.ID != "NULL" && !strings.HasPrefix(s.Data, "#"+s.Account+"|") {
		return s, fmt.Errorf("dc09rx: data %q does not name account %s", s.Data, s.Account)
	}
	return s, nil
}

// crc is CRC-16 with the reflected polynomial 0x8005 (ARC), table driven.
func crc(s string) uint16 {
	var c uint16
	for i := 0; i < len(s); i++ {
		c = c>>8 ^ table[byte(c)^s[i]]
	}
	return c
}

var table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			c = c>>1 ^ (0xA001 * (c & 1))
		}
		t[i] = c
	}
	return
}()

// open decrypts the hex part of an encrypted message and drops the pad.
func open(key []byte, h string) (string, error) {
	ct, err := hex.DecodeString(h)
	if err != nil || len(ct) == 0 || len(ct)%16 != 0 {
		return "", errors.New("dc09rx: encrypted part is not whole AES blocks in hex")
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("dc09rx: key: %w", err)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(blk, make([]byte, 16)).CryptBlocks(pt, ct)
	i := strings.IndexByte(string(pt), '|')
	if i < 0 {
		return "", errors.New("dc09rx: no | after the pad: wrong key")
	}
	return string(pt[i+1:]), nil
}

// sealHex encrypts text with a pad of '0's in front, to whole blocks.
func sealHex(key []byte, text string) string {
	blk, _ := aes.NewCipher(key)
	n := 16 - len(text)%16
	pt := []byte(strings.Repeat("0", n) + text)
	ct := make([]byte, len(pt))
	cipher.NewCBCEncrypter(blk, make([]byte, 16)).CryptBlocks(ct, pt)
	return strings.ToUpper(hex.EncodeToString(ct))
}
