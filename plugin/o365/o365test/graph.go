package o365test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Graph is a stand-in for the few Microsoft Graph mail endpoints the
// connector uses. It checks bearer tokens from an Identity (signature, aud
// https://graph.microsoft.com, and the email claim against the user in the
// path: another mailbox gets 403 ErrorAccessDenied), pages message lists with
// @odata.nextLink, and can throttle with 429/503, with or without
// Retry-After.
type Graph struct {
	URL string
	srv *httptest.Server
	id  *Identity

	mu       sync.Mutex
	pageSize int
	folders  map[string]*GraphFolder
	messages map[string]*GraphMessage
	seq      int
	throttle []throttle
	requests map[string]int // "METHOD kind" → count
	sent     []GraphSent
}

// GraphSent is one message taken by sendMail.
type GraphSent struct {
	User string // the mailbox in the path
	Raw  []byte // the MIME message, decoded from base64
}

// GraphFolder is a mail folder.
type GraphFolder struct {
	ID, Name, Parent string
}

// GraphMessage is a stored message.
type GraphMessage struct {
	ID       string
	Folder   string
	Raw      []byte
	IsRead   bool
	Received time.Time
	Props    map[string]string // single-value extended properties
}

type throttle struct {
	status     int
	retryAfter string
}

// StartGraph starts the stand-in (TLS with the identity's CA).
func StartGraph(id *Identity) (*Graph, error) {
	g := &Graph{id: id, pageSize: 10, folders: map[string]*GraphFolder{}, messages: map[string]*GraphMessage{}, requests: map[string]int{}}
	g.folders["inbox-id"] = &GraphFolder{ID: "inbox-id", Name: "Inbox"}
	tlsConf, err := id.CA.ServerTLS()
	if err != nil {
		return nil, err
	}
	g.srv = httptest.NewUnstartedServer(http.HandlerFunc(g.serve))
	g.srv.TLS = tlsConf
	g.srv.StartTLS()
	g.URL = g.srv.URL
	return g, nil
}

// Close stops the stand-in.
func (g *Graph) Close() { g.srv.Close() }

// Sent lists the messages sendMail took.
func (g *Graph) Sent() []GraphSent {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]GraphSent(nil), g.sent...)
}

// SetPageSize sets the largest page the list answers with.
func (g *Graph) SetPageSize(n int) { g.mu.Lock(); g.pageSize = n; g.mu.Unlock() }

// Throttle makes the next request answer status (429 or 503) with the given
// Retry-After header ("" for none). Calls queue up.
func (g *Graph) Throttle(status int, retryAfter string) {
	g.mu.Lock()
	g.throttle = append(g.throttle, throttle{status, retryAfter})
	g.mu.Unlock()
}

// Requests counts requests by "METHOD kind" (kind: list, value, patch, move,
// delete, folder), throttled ones included.
func (g *Graph) Requests(key string) int { g.mu.Lock(); defer g.mu.Unlock(); return g.requests[key] }

// Deliver stores raw as a new unread message in the folder named name
// ("Inbox" or a top-level folder) and returns its id.
func (g *Graph) Deliver(folder string, raw []byte) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	fid := g.folderByNameLocked(folder, "")
	if fid == "" {
		fid = g.addFolderLocked(folder, "")
	}
	g.seq++
	m := &GraphMessage{ID: fmt.Sprintf("AAMkAD%06d", g.seq), Folder: fid, Raw: raw, Received: time.Now().Add(time.Duration(g.seq) * time.Millisecond), Props: map[string]string{}}
	g.messages[m.ID] = m
	return m.ID
}

// Messages lists stored messages with their folder's name.
func (g *Graph) Messages() map[string]GraphMessage {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]GraphMessage{}
	for id, m := range g.messages {
		c := *m
		c.Folder = g.folders[m.Folder].Name
		c.Props = map[string]string{}
		for k, v := range m.Props {
			c.Props[k] = v
		}
		out[id] = c
	}
	return out
}

func (g *Graph) folderByNameLocked(name, parent string) string {
	if parent == "" && strings.EqualFold(name, "inbox") {
		return "inbox-id"
	}
	for _, f := range g.folders {
		if f.Parent == parent && strings.EqualFold(f.Name, name) {
			return f.ID
		}
	}
	return ""
}

func (g *Graph) addFolderLocked(name, parent string) string {
	g.seq++
	id := fmt.Sprintf("folder-%d", g.seq)
	g.folders[id] = &GraphFolder{ID: id, Name: name, Parent: parent}
	return id
}

func graphError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (g *Graph) serve(w http.ResponseWriter, r *http.Request) {
	// /v1.0/users/{user}/...
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	for i := range parts {
		parts[i], _ = url.PathUnescape(parts[i])
	}
	if len(parts) < 4 || parts[0] != "v1.0" || parts[1] != "users" {
		graphError(w, http.StatusBadRequest, "BadRequest", "Invalid version or path")
		return
	}
	user, rest := parts[2], parts[3:]
	kind := graphKind(r.Method, rest)
	g.mu.Lock()
	g.requests[r.Method+" "+kind]++
	if len(g.throttle) > 0 {
		th := g.throttle[0]
		g.throttle = g.throttle[1:]
		g.mu.Unlock()
		if th.retryAfter != "" {
			w.Header().Set("Retry-After", th.retryAfter)
		}
		graphError(w, th.status, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.")
		return
	}
	g.mu.Unlock()
	if code, msg, status := g.checkToken(r, user); status != 0 {
		graphError(w, status, code, msg)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case kind == "sendMail":
		// MIME: the body is the base64 of the message, Content-Type text/plain.
		raw, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		_, roles, _ := g.id.Verify(raw, "https://graph.microsoft.com")
		if !slices.Contains(roles, "Mail.Send") {
			graphError(w, http.StatusForbidden, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
			return
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
			graphError(w, http.StatusBadRequest, "RequestBodyRead", "Cannot read the request body: want base64 MIME as text/plain.")
			return
		}
		b, _ := io.ReadAll(r.Body)
		mime, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			graphError(w, http.StatusBadRequest, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
			return
		}
		g.sent = append(g.sent, GraphSent{User: user, Raw: mime})
		w.WriteHeader(http.StatusAccepted)
	case kind == "folder" && r.Method == http.MethodGet && len(rest) == 2: // mailFolders/inbox
		fid := rest[1]
		if strings.EqualFold(fid, "inbox") {
			fid = "inbox-id"
		}
		f := g.folders[fid]
		if f == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": f.ID, "displayName": f.Name})
	case kind == "folders": // mailFolders or mailFolders/{id}/childFolders, GET with $filter or POST
		parent := ""
		if len(rest) == 3 {
			parent = rest[1]
			if strings.EqualFold(parent, "inbox") {
				parent = "inbox-id"
			}
		}
		if r.Method == http.MethodPost {
			var body struct {
				DisplayName string `json:"displayName"`
			}
			_ = json.NewDecoder(r.Body).Decode(&body)
			if body.DisplayName == "" || g.folderByNameLocked(body.DisplayName, parent) != "" {
				graphError(w, http.StatusConflict, "ErrorFolderExists", "A folder with the specified name already exists.")
				return
			}
			id := g.addFolderLocked(body.DisplayName, parent)
			writeJSON(w, http.StatusCreated, map[string]any{"id": id, "displayName": body.DisplayName})
			return
		}
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Query().Get("$filter"), "displayName eq '"), "'")
		name = strings.ReplaceAll(name, "''", "'")
		var vals []map[string]any
		if id := g.folderByNameLocked(name, parent); id != "" && id != "inbox-id" || (parent == "" && strings.EqualFold(name, "inbox")) {
			vals = append(vals, map[string]any{"id": id, "displayName": name})
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": vals})
	case kind == "list":
		fid := rest[1]
		if strings.EqualFold(fid, "inbox") {
			fid = "inbox-id"
		}
		if g.folders[fid] == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
			return
		}
		q := r.URL.Query()
		unread := strings.Contains(q.Get("$filter"), "isRead eq false")
		var list []*GraphMessage
		for _, m := range g.messages {
			if m.Folder == fid && (!unread || !m.IsRead) {
				list = append(list, m)
			}
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Received.Before(list[j].Received) })
		top, _ := strconv.Atoi(q.Get("$top"))
		if top <= 0 || top > g.pageSize {
			top = g.pageSize
		}
		skip, _ := strconv.Atoi(q.Get("$skip"))
		end := min(skip+top, len(list))
		vals := []map[string]any{}
		for _, m := range list[min(skip, len(list)):end] {
			vals = append(vals, map[string]any{"id": m.ID, "receivedDateTime": m.Received.UTC().Format(time.RFC3339Nano)})
		}
		resp := map[string]any{"value": vals}
		if end < len(list) {
			q.Set("$skip", strconv.Itoa(end))
			resp["@odata.nextLink"] = g.URL + r.URL.Path + "?" + q.Encode()
		}
		writeJSON(w, http.StatusOK, resp)
	case kind == "value" || kind == "patch" || kind == "move" || kind == "delete":
		m := g.messages[rest[1]]
		if m == nil {
			graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
			return
		}
		switch kind {
		case "value":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(m.Raw)
		case "patch":
			var body struct {
				IsRead *bool `json:"isRead"`
				Props  []struct {
					ID    string `json:"id"`
					Value string `json:"value"`
				} `json:"singleValueExtendedProperties"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				graphError(w, http.StatusBadRequest, "RequestBodyRead", err.Error())
				return
			}
			if body.IsRead != nil {
				m.IsRead = *body.IsRead
			}
			for _, p := range body.Props {
				m.Props[p.ID] = p.Value
			}
			writeJSON(w, http.StatusOK, map[string]any{"id": m.ID, "isRead": m.IsRead})
		case "move":
			var body struct {
				DestinationID string `json:"destinationId"`
			}
			_ = json.NewDecoder(r.Body).Decode(&body)
			if g.folders[body.DestinationID] == nil {
				graphError(w, http.StatusNotFound, "ErrorInvalidIdMalformed", "Id is malformed.")
				return
			}
			// A move gives the message a new id, as Exchange does.
			delete(g.messages, m.ID)
			g.seq++
			m.ID = fmt.Sprintf("AAMkAD%06d", g.seq)
			m.Folder = body.DestinationID
			g.messages[m.ID] = m
			writeJSON(w, http.StatusCreated, map[string]any{"id": m.ID})
		case "delete":
			delete(g.messages, m.ID)
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		graphError(w, http.StatusBadRequest, "BadRequest", "Unsupported request "+r.Method+" "+r.URL.Path)
	}
}

func graphKind(method string, rest []string) string {
	switch {
	case len(rest) == 1 && rest[0] == "sendMail" && method == http.MethodPost:
		return "sendMail"
	case len(rest) == 1 && rest[0] == "mailFolders", len(rest) == 3 && rest[0] == "mailFolders" && rest[2] == "childFolders":
		return "folders"
	case len(rest) == 2 && rest[0] == "mailFolders":
		return "folder"
	case len(rest) == 3 && rest[0] == "mailFolders" && rest[2] == "messages":
		return "list"
	case len(rest) == 3 && rest[0] == "messages" && rest[2] == "$value":
		return "value"
	case len(rest) == 3 && rest[0] == "messages" && rest[2] == "move":
		return "move"
	case len(rest) == 2 && rest[0] == "messages" && method == http.MethodPatch:
		return "patch"
	case len(rest) == 2 && rest[0] == "messages" && method == http.MethodDelete:
		return "delete"
	}
	return "other"
}

// checkToken validates the bearer token as Graph would, and applies the
// mailbox grant.
func (g *Graph) checkToken(r *http.Request, user string) (code, msg string, status int) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "InvalidAuthenticationToken", "Access token is empty.", http.StatusUnauthorized
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return g.id.PublicKey(), nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience("https://graph.microsoft.com"), jwt.WithIssuer(g.id.Issuer()))
	if err != nil {
		return "InvalidAuthenticationToken", "Access token validation failure. Invalid audience or token expired.", http.StatusUnauthorized
	}
	if email, _ := claims["email"].(string); !strings.EqualFold(email, user) {
		return "ErrorAccessDenied", "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.", http.StatusForbidden
	}
	return "", "", 0
}

// CreateFolder makes a top-level folder (or returns the existing one's id).
func (g *Graph) CreateFolder(name string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if id := g.folderByNameLocked(name, ""); id != "" {
		return id
	}
	return g.addFolderLocked(name, "")
}
