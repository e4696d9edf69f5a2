package console

import (
	"bufio"
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// rig is a console on the fake backend with two users and a token. Every
// body it fetches is kept and, when the test ends, scanned for secrets.
type rig struct {
	t      *testing.T
	fake   *fakeBackend
	srv    *Server
	api    *apiStub
	mu     sync.Mutex
	bodies map[string]string // "METHOD path" → body
	hashes []string
}

// apiStub stands in for the JSON API the console guards.
type apiStub struct {
	mu    sync.Mutex
	calls []string
}

func (a *apiStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.calls = append(a.calls, r.Method+" "+r.URL.Path)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"health":"healthy"}`)
}

// hashOnce hashes the test users' passwords at bcrypt's lowest cost, once.
var hashOnce = sync.OnceValues(func() ([2]string, error) {
	op, err := bcrypt.GenerateFromPassword([]byte(fakePassword), bcrypt.MinCost)
	if err != nil {
		return [2]string{}, err
	}
	vw, err := bcrypt.GenerateFromPassword([]byte(viewerPassword), bcrypt.MinCost)
	return [2]string{string(op), string(vw)}, err
})

func newRig(t *testing.T, loopback bool) *rig {
	t.Helper()
	h, err := hashOnce()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r := &rig{t: t, fake: newFake(now), api: &apiStub{}, bodies: map[string]string{}, hashes: h[:]}
	r.srv, err = New(r.fake, Options{
		Users:    []User{{Name: "olga", PasswordHash: h[0], Role: Operator}, {Name: "vic", PasswordHash: h[1], Role: Viewer}},
		Token:    fakeToken + "\n",
		Loopback: loopback,
		API:      r.api,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.scanSecrets)
	return r
}

// scanSecrets fails the test if any page it fetched shows a password, a
// hash, the token, the fake connector's client secret or the session key.
func (r *rig) scanSecrets() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) == 0 {
		return
	}
	secrets := append([]string{fakeClientSecret, fakePassword, viewerPassword, strings.TrimSpace(fakeToken), string(r.srv.key)}, r.hashes...)
	for what, body := range r.bodies {
		for _, s := range secrets {
			if strings.Contains(body, s) {
				r.t.Errorf("%s shows a secret (%.12q…)", what, s)
			}
		}
	}
}

type req struct {
	method, path string
	remote       string // default 127.0.0.1
	form         url.Values
	header       map[string]string
	cookie       *http.Cookie
	basic        [2]string
}

func (r *rig) do(q req) *http.Response {
	r.t.Helper()
	var body io.Reader
	if q.form != nil {
		body = strings.NewReader(q.form.Encode())
	}
	if q.method == "" {
		q.method = http.MethodGet
	}
	hr := httptest.NewRequest(q.method, "http://gw.example:8025"+q.path, body)
	hr.RemoteAddr = "127.0.0.1:50000"
	if q.remote != "" {
		hr.RemoteAddr = q.remote
	}
	if q.form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range q.header {
		hr.Header.Set(k, v)
	}
	if q.cookie != nil {
		hr.AddCookie(q.cookie)
	}
	if q.basic[0] != "" {
		hr.SetBasicAuth(q.basic[0], q.basic[1])
	}
	w := httptest.NewRecorder()
	r.srv.ServeHTTP(w, hr)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	res.Body = io.NopCloser(strings.NewReader(string(b)))
	r.mu.Lock()
	r.bodies[q.method+" "+q.path] += string(b)
	r.mu.Unlock()
	return res
}

func bodyOf(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func cookieOf(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// browser opens a page as a browser would and returns its session cookie
// and the CSRF token of its forms.
func (r *rig) browser(remote string, cookie *http.Cookie, path string) (*http.Cookie, string) {
	r.t.Helper()
	res := r.do(req{path: path, remote: remote, cookie: cookie})
	if c := cookieOf(res); c != nil {
		cookie = c
	}
	m := csrfInput.FindStringSubmatch(bodyOf(res))
	if m == nil {
		r.t.Fatalf("GET %s: %d, no CSRF token in the page", path, res.StatusCode)
	}
	return cookie, m[1]
}

// signIn goes through the login form from a remote address.
func (r *rig) signIn(remote, name, pw string) (*http.Cookie, string) {
	r.t.Helper()
	c, tok := r.browser(remote, nil, "/login")
	res := r.do(req{method: "POST", path: "/login", remote: remote, cookie: c,
		form:   url.Values{"csrf": {tok}, "name": {name}, "password": {pw}, "next": {"/failed"}},
		header: map[string]string{"Origin": "http://gw.example:8025"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/failed" {
		r.t.Fatalf("sign-in as %s: %d %s, want 303 to /failed", name, res.StatusCode, res.Header.Get("Location"))
	}
	c = cookieOf(res)
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		r.t.Fatalf("sign-in cookie %+v: want HttpOnly, SameSite=Strict", c)
	}
	return r.browser(remote, c, "/failed")
}

const remote = "203.0.113.9:41000"

// TestPagesRender: every page answers 200 and shows what an operator looks
// for; every answer carries the security headers.
func TestPagesRender(t *testing.T) {
	r := newRig(t, true)
	for _, tc := range []struct {
		path  string
		want  []string
		ctype string
	}{
		{"/", []string{`data-unit="connector/inbox" data-light="green"`, `data-unit="connector/o365" data-light="amber"`,
			"restarts: 2", "AADSTS7000215", "[redacted]", "page 2 of 3", `data-unit="modem/ttyIAX0"`, "write errors: 0", `data-test="inbox"`,
			`data-unit="gateway/gw-east" data-light="green"`, "connectors owned: inbox, o365", `data-unit="gateway/gw-west" data-light="red"`, "down: no heartbeat"}, "text/html"},
		{"/fragments/overview", []string{`data-unit="driver/fax"`, "queued 1 · in progress 1 · retrying 1"}, "text/html"},
		{"/activity", []string{`data-source="/events"`, "<option>inbox</option>", "<option>fax</option>"}, "text/html"},
		{"/activity?driver=fax", []string{`data-source="/events?driver=fax"`, "<option selected>fax</option>"}, "text/html"},
		{"/queue", []string{`data-driver="fax"`, `data-driver="file"`, "page 2 of 3", "busy</code> line busy", "+41 44 555 00 03"}, "text/html"},
		{"/queue?driver=fax", []string{`data-driver="fax"`}, "text/html"},
		{"/fragments/queue?driver=fax", []string{"Waiting to retry", "r3.fax"}, "text/html"},
		{"/failed", []string{`data-job="r1.fax"`, "no_answer</code> the far end did not answer", `data-retry="r1.fax"`, `data-purge="r1.fax"`}, "text/html"},
		{"/jobs/r1.fax", []string{"fax_number", "+41445551212", "order.pdf", `src="/jobs/r1.fax/pages/2"`, "ATD+41445551212\nNO ANSWER"}, "text/html"},
		{"/jobs/r1.fax/pages/1", []string{"\x89PNG"}, "image/png"},
		{"/maps", []string{"<option>email-to-fax</option>", `name="mail"`}, "text/html"},
		{"/login", []string{`name="password"`}, "text/html"},
		{"/static/console.css", []string{".light.green"}, "text/css"},
		{"/static/console.js", []string{"EventSource"}, "text/javascript"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res := r.do(req{path: tc.path})
			body := html.UnescapeString(bodyOf(res))
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tc.ctype)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			checkHeaders(t, res, !strings.HasPrefix(tc.path, "/static/"))
		})
	}
	for _, p := range []string{"/jobs/nope", "/jobs/r1.fax/pages/3", "/nowhere"} {
		if res := r.do(req{path: p}); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
}

func checkHeaders(t *testing.T, res *http.Response, noStore bool) {
	t.Helper()
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"} {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := res.Header.Get("Cache-Control"); noStore && got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
}

// TestNoInlineScript: the CSP forbids inline script, so the pages must have
// none (or the console would silently not work).
func TestNoInlineScript(t *testing.T) {
	r := newRig(t, true)
	inline := regexp.MustCompile(`<script(?:\s+[^>]*)?>\s*[^<\s]|\son[a-z]+="|javascript:|style="`)
	for _, p := range []string{"/", "/activity", "/queue", "/failed", "/jobs/r1.fax", "/maps", "/login"} {
		if m := inline.FindString(bodyOf(r.do(req{path: p}))); m != "" {
			t.Errorf("%s has inline script or style: %q", p, m)
		}
	}
}

// TestAuth: who may see and do what.
func TestAuth(t *testing.T) {
	t.Run("remote without credentials", func(t *testing.T) {
		r := newRig(t, true)
		for _, tc := range []struct {
			method, path string
			code         int
		}{
			{"GET", "/", http.StatusSeeOther},
			{"GET", "/failed", http.StatusSeeOther},
			{"GET", "/jobs/r1.fax", http.StatusSeeOther},
			{"GET", "/events", http.StatusUnauthorized},
			{"GET", "/fragments/overview", http.StatusUnauthorized}, // the script keeps the page as it is
			{"GET", "/status", http.StatusUnauthorized},
			{"GET", "/api/jobs", http.StatusUnauthorized},
			{"GET", "/metrics", http.StatusUnauthorized},
			{"POST", "/api/jobs/r1.fax/retry", http.StatusUnauthorized},
			{"GET", "/login", http.StatusOK},
		} {
			res := r.do(req{method: tc.method, path: tc.path, remote: remote})
			if res.StatusCode != tc.code {
				t.Errorf("%s %s from %s: %d, want %d", tc.method, tc.path, remote, res.StatusCode, tc.code)
			}
			if tc.code == http.StatusSeeOther && !strings.HasPrefix(res.Header.Get("Location"), "/login?next=") {
				t.Errorf("%s redirects to %q", tc.path, res.Header.Get("Location"))
			}
		}
		if len(r.api.calls) != 0 {
			t.Errorf("the API was reached: %v", r.api.calls)
		}
	})
	t.Run("loopback is anonymous only on a loopback listener", func(t *testing.T) {
		r := newRig(t, false) // e.g. behind a proxy on this machine
		if res := r.do(req{path: "/status"}); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /status from 127.0.0.1 on a non-loopback listener: %d, want 401", res.StatusCode)
		}
		r = newRig(t, true)
		if res := r.do(req{path: "/status"}); res.StatusCode != http.StatusOK {
			t.Errorf("GET /status from 127.0.0.1 on a loopback listener: %d, want 200", res.StatusCode)
		}
		if res := r.do(req{method: "POST", path: "/api/jobs/r1.fax/retry"}); res.StatusCode != http.StatusOK {
			t.Errorf("CLI POST from 127.0.0.1 on a loopback listener: %d, want 200", res.StatusCode)
		}
	})
	t.Run("token and basic", func(t *testing.T) {
		r := newRig(t, false)
		for _, tc := range []struct {
			name string
			q    req
			code int
		}{
			{"right token", req{path: "/status", header: map[string]string{"Authorization": "Bearer " + fakeToken}}, 200},
			{"wrong token", req{path: "/status", header: map[string]string{"Authorization": "Bearer nope"}}, 401},
			{"wrong token on loopback", req{path: "/status", remote: "127.0.0.1:1", header: map[string]string{"Authorization": "Bearer nope"}}, 401},
			{"token may retry", req{method: "POST", path: "/api/jobs/r1.fax/retry", header: map[string]string{"Authorization": "Bearer " + fakeToken}}, 200},
			{"viewer reads", req{path: "/api/jobs", basic: [2]string{"vic", viewerPassword}}, 200},
			{"viewer may not retry", req{method: "POST", path: "/api/jobs/r1.fax/retry", basic: [2]string{"vic", viewerPassword}}, 403},
			{"operator may retry", req{method: "POST", path: "/api/jobs/r1.fax/purge", basic: [2]string{"olga", fakePassword}}, 200},
			{"wrong password", req{path: "/metrics", basic: [2]string{"olga", "guess"}}, 401},
			{"unknown user", req{path: "/metrics", basic: [2]string{"mallory", fakePassword}}, 401},
		} {
			tc.q.remote = remote
			if tc.name == "wrong token on loopback" {
				tc.q.remote = "127.0.0.1:1"
			}
			if res := r.do(tc.q); res.StatusCode != tc.code {
				t.Errorf("%s: %d, want %d", tc.name, res.StatusCode, tc.code)
			}
		}
		if got := strings.Join(r.api.calls, ","); got != "GET /status,POST /api/jobs/r1.fax/retry,GET /api/jobs,POST /api/jobs/r1.fax/purge" {
			t.Errorf("API calls %q", got)
		}
	})
	t.Run("login, CSRF, Origin, roles", func(t *testing.T) {
		r := newRig(t, false)
		// A wrong password shows the form again, with no session.
		c, tok := r.browser(remote, nil, "/login")
		res := r.do(req{method: "POST", path: "/login", remote: remote, cookie: c, form: url.Values{"csrf": {tok}, "name": {"olga"}, "password": {"guess"}}})
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(bodyOf(res), "Wrong name or password") {
			t.Fatalf("wrong password: %d", res.StatusCode)
		}
		// The login form itself needs its CSRF token.
		res = r.do(req{method: "POST", path: "/login", remote: remote, cookie: c, form: url.Values{"name": {"olga"}, "password": {fakePassword}}})
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("login without CSRF token: %d, want 403", res.StatusCode)
		}

		op, opTok := r.signIn(remote, "olga", fakePassword)
		vw, vwTok := r.signIn(remote, "vic", viewerPassword)
		if opTok == vwTok {
			t.Fatal("two sessions share a CSRF token")
		}
		if res := r.do(req{path: "/", remote: remote, cookie: op}); res.StatusCode != 200 || !strings.Contains(bodyOf(res), "olga (operator)") {
			t.Fatalf("signed-in overview: %d", res.StatusCode)
		}
		body := bodyOf(r.do(req{path: "/failed", remote: remote, cookie: vw}))
		if strings.Contains(body, "data-retry") || !strings.Contains(body, "r1.fax") {
			t.Error("a viewer sees the Retry button, or not the failed job")
		}
		origin := map[string]string{"Origin": "http://gw.example:8025"}
		for _, tc := range []struct {
			name   string
			cookie *http.Cookie
			form   url.Values
			header map[string]string
			code   int
		}{
			{"no CSRF token", op, url.Values{}, origin, 403},
			{"another session's token", op, url.Values{"csrf": {vwTok}}, origin, 403},
			{"wrong Origin", op, url.Values{"csrf": {opTok}}, map[string]string{"Origin": "https://evil.example"}, 403},
			{"cross-site fetch", op, url.Values{"csrf": {opTok}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
			{"viewer", vw, url.Values{"csrf": {vwTok}}, origin, 403},
			{"operator", op, url.Values{"csrf": {opTok}}, origin, 303},
		} {
			res := r.do(req{method: "POST", path: "/jobs/r1.fax/retry", remote: remote, cookie: tc.cookie, form: tc.form, header: tc.header})
			if res.StatusCode != tc.code {
				t.Errorf("retry, %s: %d, want %d", tc.name, res.StatusCode, tc.code)
			}
		}
		if got := strings.Join(r.fake.retried, ","); got != "r1.fax" {
			t.Errorf("retried %q, want only the operator's r1.fax", got)
		}
		// The API, reached with a browser session, wants the token too.
		if res := r.do(req{method: "POST", path: "/api/jobs/r1.fax/retry", remote: remote, cookie: op, header: origin}); res.StatusCode != 403 {
			t.Errorf("API POST with a session and no CSRF token: %d, want 403", res.StatusCode)
		}
		if res := r.do(req{method: "POST", path: "/api/jobs/r1.fax/retry", remote: remote, cookie: op, header: map[string]string{"X-CSRF-Token": opTok}}); res.StatusCode != 200 {
			t.Errorf("API POST with a session and its CSRF token: %d, want 200", res.StatusCode)
		}
		// A forged cookie is no session.
		forged := *op
		forged.Value = strings.Replace(op.Value, ".", ".x", 1)
		if res := r.do(req{path: "/", remote: remote, cookie: &forged}); res.StatusCode != http.StatusSeeOther {
			t.Errorf("forged cookie: %d, want 303 to the login", res.StatusCode)
		}
		// Sign-out ends the session.
		res = r.do(req{method: "POST", path: "/logout", remote: remote, cookie: op, form: url.Values{"csrf": {opTok}}})
		if c := cookieOf(res); c == nil || r.do(req{path: "/", remote: remote, cookie: c}).StatusCode != http.StatusSeeOther {
			t.Error("after sign-out the browser still sees the overview")
		}
	})
	t.Run("open redirect", func(t *testing.T) {
		for in, want := range map[string]string{"/failed": "/failed", "//evil.example/": "/", "https://evil.example/": "/", `/\evil.example`: "/"} {
			if got := localPath(in); got != want {
				t.Errorf("localPath(%q) = %q, want %q", in, got, want)
			}
		}
	})
}

// TestButtons: Retry, Purge and Test as an operator on this machine.
func TestButtons(t *testing.T) {
	r := newRig(t, true)
	c, tok := r.browser("", nil, "/failed")
	post := func(path string, form url.Values) *http.Response {
		form.Set("csrf", tok)
		return r.do(req{method: "POST", path: path, cookie: c, form: form})
	}
	res := post("/connectors/inbox/test", url.Values{})
	body := bodyOf(res)
	if res.StatusCode != 200 || !strings.Contains(body, `<strong id="test-category">ok</strong>`) || !strings.Contains(body, "the credentials work") {
		t.Errorf("Test: %d %s", res.StatusCode, body)
	}
	r.fake.testView = TestView{Category: "invalid_credential", Hint: "Check the client secret in Entra ID.", Detail: "AADSTS7000215"}
	if body := bodyOf(post("/connectors/o365/test", url.Values{})); !strings.Contains(body, "invalid_credential") || !strings.Contains(body, "Check the client secret") {
		t.Errorf("failed Test does not show its category and hint")
	}
	if res := post("/connectors/nope/test", url.Values{}); res.StatusCode != 404 {
		t.Errorf("Test of an unknown connector: %d", res.StatusCode)
	}
	res = post("/jobs/r1.fax/retry", url.Values{})
	if loc := res.Header.Get("Location"); res.StatusCode != 303 || !strings.HasPrefix(loc, "/failed?done=") {
		t.Fatalf("Retry: %d %q", res.StatusCode, loc)
	} else if body := bodyOf(r.do(req{path: loc, cookie: c})); !strings.Contains(body, "Job r1.fax is queued again.") || !strings.Contains(body, "No failed jobs.") {
		t.Errorf("after Retry the failed page does not say so:\n%s", body)
	}
	if res := post("/jobs/r1.fax/retry", url.Values{}); res.StatusCode != http.StatusConflict {
		t.Errorf("second Retry: %d, want 409", res.StatusCode)
	}
	if res := post("/jobs/r1.fax/purge", url.Values{}); res.StatusCode != 303 || len(r.fake.purged) != 1 {
		t.Errorf("Purge: %d, purged %v", res.StatusCode, r.fake.purged)
	}
	body = bodyOf(post("/maps", url.Values{"map": {"email-to-fax"}, "mail": {"From: a@example.com\nSubject: Order 4711\n\nhello\n"}}))
	if !strings.Contains(body, "subject (text) = Order 4711") {
		t.Errorf("map preview lacks the field:\n%s", body)
	}
	if body := bodyOf(post("/maps", url.Values{"map": {"email-to-fax"}, "mail": {"From: a@example.com\n\nhello\n"}})); !strings.Contains(body, "Rejected: field subject: required but empty") {
		t.Errorf("map preview does not show the rejection")
	}
}

// TestEvents: the activity stream delivers events as they happen, filtered,
// and lets go of its subscription when the browser leaves.
func TestEvents(t *testing.T) {
	r := newRig(t, true)
	ts := httptest.NewServer(r.srv)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/events?driver=fax", nil)
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	br := bufio.NewReader(res.Body)
	readUntil := func(prefix string) string {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
	}
	readUntil(": connected")
	r.fake.waitSubscribers(ctx, t, 1)
	r.fake.publish(Event{Time: time.Now(), Kind: "delivered", Driver: "file", JobID: "r9.file", Message: "written"})
	r.fake.publish(Event{Time: time.Now(), Kind: "progress", Driver: "fax", JobID: "r2.fax", Message: "page 3 of 3"})
	if l := readUntil("data: "); !strings.Contains(l, `"job":"r2.fax"`) || !strings.Contains(l, `"message":"page 3 of 3"`) {
		t.Errorf("first event %q, want the fax one (the file one is filtered out)", l)
	}
	res.Body.Close()
	r.fake.waitSubscribers(ctx, t, 0)
}

// TestSignInThrottle: after ten failed sign-ins in a minute an address is
// refused (even with the right password) until the minute has passed;
// another address is not affected.
func TestSignInThrottle(t *testing.T) {
	r := newRig(t, false)
	now := time.Now()
	r.srv.opts.Now = func() time.Time { return now }
	try := func(from, pw string) int {
		return r.do(req{path: "/metrics", remote: from, basic: [2]string{"olga", pw}}).StatusCode
	}
	for i := range maxFails {
		if code := try(remote, "guess"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, code)
		}
	}
	if code := try(remote, fakePassword); code != http.StatusUnauthorized {
		t.Errorf("right password after %d failures: %d, want 401", maxFails, code)
	}
	c, tok := r.browser(remote, nil, "/login")
	res := r.do(req{method: "POST", path: "/login", remote: remote, cookie: c, form: url.Values{"csrf": {tok}, "name": {"olga"}, "password": {fakePassword}}})
	if res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("sign-in form while throttled: %d, want 429", res.StatusCode)
	}
	if code := try("198.51.100.7:1234", fakePassword); code != http.StatusOK {
		t.Errorf("another address: %d, want 200", code)
	}
	now = now.Add(failWindow)
	if code := try(remote, fakePassword); code != http.StatusOK {
		t.Errorf("a minute later: %d, want 200", code)
	}
}
