package o365

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/graphbox"
	"github.com/mediagw/mediagw/plugin/o365/imapbox"
	"github.com/mediagw/mediagw/plugin/o365/token"
)

// Test gets a token, logs in and opens the folder once, and names the fix
// for whatever failed. With a send path it also checks that (SMTP: STARTTLS
// and AUTH, no mail; Graph: the token's Mail.Send role), in the result's Send.
func (c *Connector) Test(ctx context.Context) plugin.TestResult {
	r := c.testRead(ctx)
	if r.Send == nil {
		r.Send = c.testSend(ctx)
	}
	return r
}

func (c *Connector) testRead(ctx context.Context) plugin.TestResult {
	c.mu.Lock()
	s, ib, gb := c.s, c.imap, c.graph
	c.mu.Unlock()
	if s == nil {
		return plugin.TestResult{Category: plugin.TestError, Hint: "Configure the connector before testing it."}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Duration(s.ConnectTimeout)+time.Duration(s.RequestTimeout))
		defer cancel()
	}
	var (
		detail string
		err    error
	)
	if gb != nil {
		var unread int
		unread, err = gb.Probe(ctx)
		detail = fmt.Sprintf("Graph: folder %s of %s opened, %d unread", s.Folder, s.EmailUser, unread)
	} else {
		var res imapbox.ProbeResult
		res, err = ib.Probe(ctx)
		detail = fmt.Sprintf("IMAP %s: logged in as %s, folder %s holds %d messages, %d unseen (UIDVALIDITY %d)",
			s.imapAddress, s.EmailUser, s.Folder, res.Messages, res.Unseen, res.UIDValidity)
	}
	if err == nil {
		r := plugin.TestResult{Category: plugin.TestOK, Hint: "Settings work.", Detail: detail}
		if c.tokens != nil {
			if na := c.tokens.CertificateNotAfter(); !na.IsZero() && time.Until(na) < s.certWarn() {
				r.Hint = fmt.Sprintf("Settings work, but the app certificate expires on %s: upload a new one to the app registration.", na.Format(time.DateOnly))
			}
		}
		return r
	}
	return classify(s, err)
}

// classify turns a failure into a category and a one-line fix.
func classify(s *settings, err error) plugin.TestResult {
	detail := err.Error()
	var ae *token.AuthError
	switch {
	case errors.Is(err, token.ErrLoginRequired):
		return plugin.TestResult{Category: plugin.TestInteractionRequired, Detail: detail,
			Hint: "No user has signed in yet (auth: delegated): run mediagw login -c <config> <connector> and sign in as " + s.EmailUser + "."}
	case errors.As(err, &ae) && s.Auth == "delegated" && (ae.AADSTS == 65001 || ae.Code == "consent_required"):
		return plugin.TestResult{Category: plugin.TestConsentRequired, Detail: detail + ": " + ae.Description,
			Hint: "The signed-in user has not consented to the app's scopes (AADSTS65001): run mediagw login -c <config> <connector> and accept, or have an admin grant consent for the tenant."}
	case errors.As(err, &ae) && s.Auth == "delegated" && (ae.AADSTS == 50076 || ae.AADSTS == 50079 || ae.AADSTS == 700082 ||
		ae.Code == "interaction_required" || ae.Code == "invalid_grant"):
		why := "the sign-in is no longer valid"
		switch ae.AADSTS {
		case 700082:
			why = "the refresh token expired (AADSTS700082: unused for too long)"
		case 50076, 50079:
			why = fmt.Sprintf("multi-factor authentication is now required (AADSTS%d)", ae.AADSTS)
		}
		return plugin.TestResult{Category: plugin.TestInteractionRequired, Detail: detail + ": " + ae.Description,
			Hint: "The user must sign in again: " + why + ". Run mediagw login -c <config> <connector>."}
	case errors.As(err, &ae):
		r := plugin.TestResult{Category: plugin.TestInvalidCredential, Detail: detail + ": " + ae.Description}
		switch ae.AADSTS {
		case 7000215:
			r.Hint = "The client secret is wrong: paste the secret's Value (shown once, when it was created), not its Secret ID, into client_secret."
		case 7000222:
			r.Hint = "The client secret has expired: add a new one under Certificates & secrets in the app registration and put its Value into client_secret."
		case 700016:
			r.Hint = fmt.Sprintf("No application %s in tenant %s: check client_id (Application (client) ID) and tenant_id, and that the app was consented to in that tenant.", s.ClientID, s.TenantID)
		case 90002:
			r.Hint = fmt.Sprintf("Tenant %s (tenant_id) was not found at %s: use the Directory (tenant) ID from the app's overview; for a sovereign cloud set authority_host (e.g. login.microsoftonline.us).", s.TenantID, s.AuthorityHost)
		case 700027:
			r.Hint = "The certificate does not match the app registration: upload the public part of certificate_file under Certificates & secrets, and check the private key belongs to it."
		case 7000218, 7000216:
			r.Hint = "No credential was sent: set client_secret, client_secret_file or certificate_file."
			if s.Auth == "delegated" {
				r.Hint = "The app registration does not allow public client flows: under Authentication set Allow public client flows to Yes (auth: delegated sends no secret)."
			}
		default:
			if ae.Temporary() {
				r.Category = plugin.TestUnreachable
				r.Hint = fmt.Sprintf("The identity platform at %s answered HTTP %d: try again later; if it persists, check its service health.", s.AuthorityHost, ae.Status)
			} else if ae.Code == "invalid_scope" {
				r.Hint = "The token request's scope was refused: check the app has the Office 365 Exchange Online (IMAP.AccessAsApp) or Graph (Mail.ReadWrite) application permission with admin consent."
			} else if ae.Code != "" {
				r.Hint = fmt.Sprintf("The identity platform refused the app's credentials (%s): check tenant_id, client_id and the secret or certificate.", ae.Code)
			} else {
				r.Hint = "The identity platform refused the app's credentials: check tenant_id, client_id and the secret or certificate."
			}
		}
		return r
	case errors.Is(err, token.ErrUnreachable):
		return plugin.TestResult{Category: plugin.TestUnreachable, Detail: detail,
			Hint: fmt.Sprintf("Cannot reach the identity platform at %s: check DNS, outbound HTTPS (443), the proxy setting and tls_ca_file.", s.AuthorityHost)}
	case errors.Is(err, imapbox.ErrDial):
		return plugin.TestResult{Category: plugin.TestUnreachable, Detail: detail,
			Hint: fmt.Sprintf("Cannot reach the IMAP server %s: check imap_host/imap_port, DNS, outbound port %d, the proxy setting and tls_ca_file.", s.imapAddress, s.IMAPPort)}
	case errors.Is(err, imapbox.ErrAuth), errors.Is(err, graphbox.ErrForbidden), errors.Is(err, graphbox.ErrToken):
		return plugin.TestResult{Category: plugin.TestPermissionDenied, Detail: detail, Hint: permissionHint(s)}
	case errors.Is(err, imapbox.ErrNoFolder), errors.Is(err, graphbox.ErrNotFound):
		return plugin.TestResult{Category: plugin.TestMailboxNotFound, Detail: detail,
			Hint: fmt.Sprintf("Mailbox %s has no folder %q (or the mailbox does not exist): check email_user and folder (subfolders as INBOX/Fax).", s.EmailUser, s.Folder)}
	case errors.Is(err, graphbox.ErrUnreachable):
		return plugin.TestResult{Category: plugin.TestUnreachable, Detail: detail,
			Hint: fmt.Sprintf("Cannot reach Microsoft Graph at %s: check DNS, outbound HTTPS (443), the proxy setting and tls_ca_file.", s.GraphEndpoint)}
	case errors.Is(err, context.DeadlineExceeded):
		return plugin.TestResult{Category: plugin.TestUnreachable, Detail: detail,
			Hint: "The test timed out: check the network path, the proxy setting, and raise connect_timeout if the link is slow."}
	}
	return plugin.TestResult{Category: plugin.TestError, Detail: detail, Hint: "Unexpected failure; see the detail."}
}

// permissionHint names the Exchange Online steps that grant an app a mailbox.
func permissionHint(s *settings) string {
	if s.Protocol == "graph" {
		return strings.Join([]string{
			fmt.Sprintf("The token was issued but Microsoft Graph refused access to the mailbox %s (403).", s.EmailUser),
			"Check that the app has the application permission Microsoft Graph › Mail.ReadWrite with admin consent granted;",
			fmt.Sprintf("that an application access policy does not exclude the mailbox (Test-ApplicationAccessPolicy -Identity %s -AppId %s);", s.EmailUser, s.ClientID),
			"and, with RBAC for Applications, that a management scope holds the mailbox (Test-ServicePrincipalAuthorization).",
		}, " ")
	}
	perm := "Office 365 Exchange Online › IMAP.AccessAsApp"
	return strings.Join([]string{
		fmt.Sprintf("The token was issued but the mailbox %s refused it.", s.EmailUser),
		fmt.Sprintf("Grant the app (application permission %s, admin consent), then in Exchange Online PowerShell run:", perm),
		fmt.Sprintf("New-ServicePrincipal -AppId %s -ObjectId <enterprise app object id>;", s.ClientID),
		fmt.Sprintf("Add-MailboxPermission -Identity %s -User <service principal id> -AccessRights FullAccess;", s.EmailUser),
		fmt.Sprintf("if an application access policy exists, check it with Test-ApplicationAccessPolicy -Identity %s -AppId %s.", s.EmailUser, s.ClientID),
	}, " ")
}
