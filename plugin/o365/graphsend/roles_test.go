package graphsend

import (
	"encoding/base64"
	"slices"
	"testing"
)

func TestTokenRoles(t *testing.T) {
	jwt := func(payload string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	tests := []struct {
		name, token string
		want        []string
		err         bool
	}{
		{"app roles", jwt(`{"roles":["Mail.ReadWrite","Mail.Send"]}`), []string{"Mail.ReadWrite", "Mail.Send"}, false},
		{"delegated scopes", jwt(`{"scp":"Mail.ReadWrite Mail.Send"}`), []string{"Mail.ReadWrite", "Mail.Send"}, false},
		{"neither", jwt(`{"aud":"x"}`), nil, false},
		{"not a JWT", "opaque-token", nil, true},
		{"bad payload", "a.!!!.c", nil, true},
	}
	for _, tt := range tests {
		got, err := tokenRoles(tt.token)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("%s: tokenRoles = %v, %v; want %v (error %v)", tt.name, got, err, tt.want, tt.err)
		}
	}
}
