package o365

import (
	"strings"
	"testing"
)

func TestScopeFollowsTheCloud(t *testing.T) {
	for _, tc := range []struct {
		protocol, imapHost, graph, want string
	}{
		{"imap", "outlook.office365.com", "", "https://outlook.office365.com/.default"},
		{"imap", "outlook.office365.us", "", "https://outlook.office365.us/.default"},
		{"imap", "Outlook-DoD.office365.us", "", "https://outlook-dod.office365.us/.default"},
		{"imap", "partner.outlook.cn", "", "https://partner.outlook.cn/.default"},
		{"imap", "127.0.0.1", "", "https://outlook.office365.com/.default"}, // a test server or a tunnel
		{"graph", "", "https://graph.microsoft.com", "https://graph.microsoft.com/.default"},
		{"graph", "", "https://graph.microsoft.us/", "https://graph.microsoft.us/.default"},
		{"graph", "", "https://dod-graph.microsoft.us", "https://dod-graph.microsoft.us/.default"},
		{"graph", "", "https://microsoftgraph.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/.default"},
		{"graph", "outlook.office365.us", "https://127.0.0.1:8443", "https://graph.microsoft.com/.default"},
	} {
		s := &settings{Config: Config{Protocol: tc.protocol, IMAPHost: tc.imapHost, GraphEndpoint: tc.graph}}
		if got := s.scope(); got != tc.want {
			t.Errorf("%s %s%s: scope %q, want %q", tc.protocol, tc.imapHost, tc.graph, got, tc.want)
		}
	}
}

func TestPermissionHintPerProtocol(t *testing.T) {
	imap := permissionHint(&settings{Config: Config{Protocol: "imap", EmailUser: "fax@contoso.com", ClientID: "app-1"}})
	graph := permissionHint(&settings{Config: Config{Protocol: "graph", EmailUser: "fax@contoso.com", ClientID: "app-1"}})
	for _, want := range []string{"IMAP.AccessAsApp", "New-ServicePrincipal -AppId app-1", "Add-MailboxPermission -Identity fax@contoso.com"} {
		if !strings.Contains(imap, want) {
			t.Errorf("IMAP hint lacks %q: %s", want, imap)
		}
	}
	for _, want := range []string{"Mail.ReadWrite", "admin consent", "Test-ApplicationAccessPolicy -Identity fax@contoso.com -AppId app-1", "RBAC for Applications"} {
		if !strings.Contains(graph, want) {
			t.Errorf("Graph hint lacks %q: %s", want, graph)
		}
	}
	if strings.Contains(graph, "Add-MailboxPermission") {
		t.Errorf("Graph hint gives the IMAP grant: %s", graph)
	}
}
