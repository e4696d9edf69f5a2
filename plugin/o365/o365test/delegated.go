package o365test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The delegated ("OAuth User") side of the identity stand-in: the device
// authorization grant (RFC 8628) as Entra answers it, and the refresh-token
// grant. Delegated access tokens carry the user's scopes in "scp" and the
// user's address in "email" (as Dovecot wants it) and "upn".

// Device-flow answers a test can script with SetDeviceAnswers.
const (
	DevicePending  = "authorization_pending"
	DeviceSlowDown = "slow_down"
	DeviceExpired  = "expired_token"
	DeviceDenied   = "access_denied"
	DeviceApprove  = "" // the user signed in and consented
)

type delegatedState struct {
	answers      []string
	polls        int
	codes        map[string]string // device code → scope asked for
	refresh      map[string]string // refresh token → user
	refreshFault int               // AADSTS code the refresh grant answers with, 0 = none
	user         string
}

// SetDeviceAnswers scripts the answers to the next device-code polls; once
// they are used up, the device is approved for DeviceUser.
func (id *Identity) SetDeviceAnswers(answers ...string) {
	id.mu.Lock()
	id.delegated.answers = answers
	id.mu.Unlock()
}

// DevicePolls counts the device-code token polls so far.
func (id *Identity) DevicePolls() int { id.mu.Lock(); defer id.mu.Unlock(); return id.delegated.polls }

// SetDeviceUser names the user who signs in on the device page (default:
// Mailbox).
func (id *Identity) SetDeviceUser(user string) {
	id.mu.Lock()
	id.delegated.user = user
	id.mu.Unlock()
}

// SetRefreshFault makes the refresh-token grant fail with an Entra code:
// 700082 (refresh token expired), 65001 (consent_required), 50076
// (interaction_required: MFA); 0 heals it.
func (id *Identity) SetRefreshFault(aadsts int) {
	id.mu.Lock()
	id.delegated.refreshFault = aadsts
	id.mu.Unlock()
}

func (id *Identity) deviceCode(w http.ResponseWriter, r *http.Request) {
	if _, ok := id.preamble(w, r); !ok {
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") != id.ClientID {
		writeAADError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", r.PostForm.Get("client_id"), id.TenantID))
		return
	}
	code := "DC-" + randHex(16)
	user := strings.ToUpper(randHex(4))
	id.mu.Lock()
	if id.delegated.codes == nil {
		id.delegated.codes = map[string]string{}
	}
	id.delegated.codes[code] = r.PostForm.Get("scope")
	id.mu.Unlock()
	uri := id.URL + "/devicelogin"
	writeJSON(w, http.StatusOK, map[string]any{
		"user_code":        user,
		"device_code":      code,
		"verification_uri": uri,
		"expires_in":       900,
		"interval":         1,
		"message":          fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate.", uri, user),
	})
}

func (id *Identity) deviceToken(w http.ResponseWriter, r *http.Request) {
	id.mu.Lock()
	id.delegated.polls++
	scope, known := id.delegated.codes[r.PostForm.Get("device_code")]
	answer := DeviceApprove
	if len(id.delegated.answers) > 0 {
		answer = id.delegated.answers[0]
		id.delegated.answers = id.delegated.answers[1:]
	}
	user := id.delegated.user
	if user == "" {
		user = id.Mailbox
	}
	id.mu.Unlock()
	if !known {
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 70000, "The provided value for the input parameter 'device_code' is not valid.")
		return
	}
	switch answer {
	case DevicePending:
		writeAADError(w, http.StatusBadRequest, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
		return
	case DeviceSlowDown:
		writeAADError(w, http.StatusBadRequest, "slow_down", 70016, "OAuth 2.0 device flow error. Slow down polling.")
		return
	case DeviceExpired:
		writeAADError(w, http.StatusBadRequest, "expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid. This device code has expired.")
		return
	case DeviceDenied:
		writeAADError(w, http.StatusBadRequest, "access_denied", 65004, "User declined to consent to access the app.")
		return
	}
	id.mu.Lock()
	delete(id.delegated.codes, r.PostForm.Get("device_code"))
	id.mu.Unlock()
	id.issueDelegated(w, user, scope)
}

func (id *Identity) refreshToken(w http.ResponseWriter, r *http.Request) {
	if r.PostForm.Get("client_id") != id.ClientID {
		writeAADError(w, http.StatusBadRequest, "unauthorized_client", 700016, "Application was not found in the directory.")
		return
	}
	id.mu.Lock()
	user, ok := id.delegated.refresh[r.PostForm.Get("refresh_token")]
	fault := id.delegated.refreshFault
	id.mu.Unlock()
	switch {
	case !ok:
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
		return
	case fault == 700082:
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 700082, "The refresh token has expired due to inactivity. The token was issued on 2026-01-01T00:00:00Z and was inactive for 90.00:00:00.")
		return
	case fault == 65001:
		writeSubError(w, "invalid_grant", "consent_required", 65001, "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.")
		return
	case fault == 50076:
		writeSubError(w, "interaction_required", "", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.")
		return
	}
	id.issueDelegated(w, user, r.PostForm.Get("scope"))
}

func writeSubError(w http.ResponseWriter, code, suberror string, aadsts int, desc string) {
	body := map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s", aadsts, desc, randHex(8)),
		"error_codes":       []int{aadsts},
	}
	if suberror != "" {
		body["suberror"] = suberror
	}
	writeJSON(w, http.StatusBadRequest, body)
}

// issueDelegated answers a token request for user with an access token for
// the resource the scopes name, a refresh token, an id token and
// client_info, as MSAL's public client caches them.
func (id *Identity) issueDelegated(w http.ResponseWriter, user, scope string) {
	aud, scp, full := "", []string{}, []string{}
	for _, s := range strings.Fields(scope) {
		res, name, ok := strings.Cut(strings.TrimPrefix(s, "https://"), "/")
		if !ok {
			continue // openid, profile, offline_access
		}
		switch res {
		case "outlook.office365.com", "outlook.office.com":
			aud = "https://outlook.office.com"
		case "graph.microsoft.com":
			aud = "https://graph.microsoft.com"
		}
		scp = append(scp, name)
		full = append(full, s)
	}
	if aud == "" {
		writeAADError(w, http.StatusBadRequest, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid.")
		return
	}
	_, life, _ := id.state()
	oid := "7a1d2c3b-0000-4000-8000-" + randHex(6)
	now := time.Now()
	claims := jwt.MapClaims{
		"aud": aud, "iss": id.Issuer(), "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(life).Unix(),
		"tid": id.TenantID, "appid": id.ClientID, "oid": oid, "sub": oid, "ver": "1.0",
		"scp": strings.Join(scp, " "), "upn": user, "email": user, "name": "Fax User",
	}
	key, kid := id.signingKey()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = kid
	at, err := t.SignedString(key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	idTok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": id.ClientID, "iss": id.URL + "/" + id.TenantID + "/v2.0", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"oid": oid, "sub": oid, "tid": id.TenantID, "preferred_username": user, "name": "Fax User", "ver": "2.0",
	})
	idTok.Header["kid"] = kid
	it, _ := idTok.SignedString(key)
	rt := "RT." + randHex(24)
	ci, _ := json.Marshal(map[string]string{"uid": oid, "utid": id.TenantID})
	id.mu.Lock()
	if id.delegated.refresh == nil {
		id.delegated.refresh = map[string]string{}
	}
	id.delegated.refresh[rt] = user
	id.issued = append(id.issued, at, rt)
	id.mu.Unlock()
	id.tokens.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"scope":          strings.Join(full, " "),
		"expires_in":     int64(life / time.Second),
		"ext_expires_in": int64(life / time.Second),
		"access_token":   at,
		"refresh_token":  rt,
		"id_token":       it,
		"client_info":    base64.RawURLEncoding.EncodeToString(ci),
	})
}
