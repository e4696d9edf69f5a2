package oauthimap

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/o365/xoauth2"
)

type fixture struct {
	id     *o365test.Identity
	srv    *Server
	mu     sync.Mutex
	events []Event
}

func start(t *testing.T) *fixture {
	t.Helper()
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { id.Close() })
	tlsConf, err := id.CA.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{id: id}
	f.srv, err = Start(Options{
		Verifier: VerifierFor(id), TLS: tlsConf, Users: []string{id.Mailbox}, Folders: []string{"Processed"},
		OnEvent: func(e Event) { f.mu.Lock(); f.events = append(f.events, e); f.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *fixture) dial(t *testing.T, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.TLSConfig = &tls.Config{RootCAs: f.id.CA.Pool}
	c, err := imapclient.DialTLS(f.srv.Addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *fixture) kinds() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var k []string
	for _, e := range f.events {
		k = append(k, e.Kind)
	}
	return strings.Join(k, ",")
}

// resign signs a copy of tok's claims with key, keeping the header's kid.
func resign(t *testing.T, tok string, key *rsa.PrivateKey) string {
	t.Helper()
	claims := jwt.MapClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, claims)
	if err != nil {
		t.Fatal(err)
	}
	n := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	n.Header["kid"] = parsed.Header["kid"]
	s, err := n.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestXOAUTH2(t *testing.T) {
	f := start(t)
	id := f.id
	const aud = "https://outlook.office.com"
	good, _ := id.Mint(id.Mailbox, aud, time.Hour)
	other, _ := id.Mint("boss@example.com", aud, time.Hour)
	expired, _ := id.Mint(id.Mailbox, aud, -time.Minute)
	wrongAud, _ := id.Mint(id.Mailbox, "https://graph.microsoft.com", time.Hour)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	badSig := resign(t, good, otherKey)
	noneAlg := func() string {
		claims := jwt.MapClaims{}
		jwt.NewParser().ParseUnverified(good, claims) //nolint:errcheck // good is well formed
		s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}()
	cases := []struct {
		name, user, token string
		ok                bool
	}{
		{"good token", id.Mailbox, good, true},
		{"good token, login name in other case", strings.ToUpper(id.Mailbox), good, true},
		{"token for another mailbox", id.Mailbox, other, false},
		{"token of the mailbox, login as another", "boss@example.com", good, false},
		{"expired token", id.Mailbox, expired, false},
		{"bad signature", id.Mailbox, badSig, false},
		{"wrong audience", id.Mailbox, wrongAud, false},
		{"alg none", id.Mailbox, noneAlg, false},
		{"not a JWT", id.Mailbox, "not-a-token", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := f.dial(t, nil)
			if !c.Caps().Has(imap.Cap("AUTH=XOAUTH2")) || c.Caps().Has(imap.Cap("AUTH=PLAIN")) {
				t.Errorf("capabilities %v: want AUTH=XOAUTH2 only", c.Caps())
			}
			sc := xoauth2.New(tc.user, tc.token)
			err := c.Authenticate(sc)
			if tc.ok {
				if err != nil {
					t.Fatalf("authenticate: %v", err)
				}
				if _, err := c.Select("INBOX", nil).Wait(); err != nil {
					t.Fatalf("select after login: %v", err)
				}
				return
			}
			var ierr *imap.Error
			if err == nil {
				t.Fatal("authenticate succeeded, want NO")
			}
			if !asIMAPError(err, &ierr) || ierr.Type != imap.StatusResponseTypeNo || ierr.Code != imap.ResponseCodeAuthenticationFailed {
				t.Fatalf("err = %v, want NO [AUTHENTICATIONFAILED]", err)
			}
			if sc.LastError == nil || sc.LastError.Status != "401" {
				t.Errorf("challenge = %+v, want status 401", sc.LastError)
			}
			// Still not authenticated.
			if _, err := c.Select("INBOX", nil).Wait(); err == nil {
				t.Error("select after a refused login succeeded")
			}
		})
	}
}

func asIMAPError(err error, target **imap.Error) bool {
	e, ok := err.(*imap.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestPasswordLoginRefused(t *testing.T) {
	f := start(t)
	c := f.dial(t, nil)
	err := c.Login(f.id.Mailbox, "").Wait()
	if err == nil || !strings.Contains(err.Error(), "XOAUTH2") {
		t.Fatalf("LOGIN: err = %v, want a refusal naming XOAUTH2", err)
	}
	if !strings.Contains(f.kinds(), "login-failed") {
		t.Errorf("events %q: want login-failed", f.kinds())
	}
}

func TestIdleAndSettle(t *testing.T) {
	f := start(t)
	id := f.id
	exists := make(chan uint32, 8)
	c := f.dial(t, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}})
	tok, _ := id.Mint(id.Mailbox, "https://outlook.office.com", time.Hour)
	if err := c.Authenticate(xoauth2.New(id.Mailbox, tok)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the server enter IDLE
	uid, err := f.srv.Append(id.Mailbox, "INBOX", []byte("Subject: hi\r\n\r\nhello\r\n"))
	if err != nil || uid == 0 {
		t.Fatalf("append: %v %v", uid, err)
	}
	select {
	case n := <-exists:
		if n != 1 {
			t.Errorf("EXISTS %d, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EXISTS while idling")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	set := imap.UIDSetNum(uid)
	msgs, err := c.Fetch(set, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 || len(msgs[0].BodySection) != 1 {
		t.Fatalf("fetch: %v %v", msgs, err)
	}
	if _, err := c.Move(set, "Processed").Wait(); err != nil {
		t.Fatal(err)
	}
	if n, _, err := f.srv.Status(id.Mailbox, "Processed"); err != nil || n != 1 {
		t.Errorf("Processed holds %d (%v), want 1", n, err)
	}
	if n, _, _ := f.srv.Status(id.Mailbox, "INBOX"); n != 0 {
		t.Errorf("INBOX holds %d, want 0", n)
	}
	want := "login,select,idle,append,fetch,move"
	if got := f.kinds(); got != want {
		t.Errorf("events %q, want %q", got, want)
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add(xoauth2.InitialResponse("fax@example.com", "abc.def.ghi"))
	f.Add([]byte("user=\x01auth=Bearer \x01\x01"))
	f.Add([]byte("auth=bearer x\x01user=u"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, tok, err := ParseResponse(b)
		if err == nil && (u == "" || tok == "") {
			t.Fatalf("accepted %q with empty user or token", b)
		}
		if err == nil {
			// A well-formed response round-trips.
			u2, tok2, err2 := ParseResponse(xoauth2.InitialResponse(u, tok))
			if err2 != nil || (!strings.Contains(u, "\x01") && u2 != u) || (!strings.Contains(tok, "\x01") && tok2 != tok) {
				t.Fatalf("round trip of %q: %q %q %v", b, u2, tok2, err2)
			}
		}
	})
}

// TestIdleSeesMailFromBeforeIdle: a message appended after the client's
// last command and before its IDLE is announced when the IDLE starts, not
// only with the next message (the gap a connector going back to IDLE after
// a fetch leaves).
func TestIdleSeesMailFromBeforeIdle(t *testing.T) {
	f := start(t)
	id := f.id
	exists := make(chan uint32, 8)
	c := f.dial(t, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}})
	tok, _ := id.Mint(id.Mailbox, "https://outlook.office.com", time.Hour)
	if err := c.Authenticate(xoauth2.New(id.Mailbox, tok)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Append(id.Mailbox, "INBOX", []byte("Subject: early\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	select {
	case n := <-exists:
		if n != 1 {
			t.Errorf("EXISTS %d, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the message appended before IDLE was not announced")
	}
}
