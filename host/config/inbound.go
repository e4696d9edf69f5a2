package config

import (
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Inbound routes the faxes the gateway receives: the first route whose
// match fits a call takes it, else Default. Matching itself (number and
// station id patterns, days and hours) is host/inbound's; Parse checks
// what points at other sections.
type Inbound struct {
	// Timezone is the IANA zone of the routes' days and hours; empty: the
	// machine's local time.
	Timezone string         `yaml:"timezone"`
	Routes   []InboundRoute `yaml:"routes"`
	// Default takes a fax no route matched. Without one such a fax goes to
	// a folder under the spool (unrouted/) and is logged as an error.
	Default *InboundTarget `yaml:"default"`
}

// InboundRoute is one rule: every criterion given must match.
type InboundRoute struct {
	Name          string       `yaml:"name"`
	Match         InboundMatch `yaml:"match"`
	InboundTarget `yaml:",inline"`
}

// InboundMatch holds a route's criteria; a list matches when one of its
// entries does. Patterns may use * and ?.
type InboundMatch struct {
	Called   []string `yaml:"called"`    // the number dialled (DID)
	Caller   []string `yaml:"caller"`    // the caller's number (caller id)
	RemoteID []string `yaml:"remote_id"` // the sender's station id (TSI), without regard to case
	Days     []string `yaml:"days"`      // mon … sun, or ranges: mon-fri
	Hours    []string `yaml:"hours"`     // "08:00-18:00"; a window may cross midnight
}

// InboundTarget is where a received fax goes: a mailbox, a folder or both.
type InboundTarget struct {
	Mail   *InboundMail `yaml:"mail"`
	Folder string       `yaml:"folder"` // written by the file driver, relative to the config file
}

// InboundMail sends a received fax as an email through a connector's send
// capability.
type InboundMail struct {
	Connector string   `yaml:"connector"`
	To        []string `yaml:"to"`
	From      string   `yaml:"from"`
	Subject   string   `yaml:"subject"` // a text/template; see docs/faxmodem.md
	Body      string   `yaml:"body"`    // a text/template; empty: the built-in text
	Attach    []string `yaml:"attach"`  // pdf, tiff; default: pdf
}

// Attachment kinds of a received fax's mail.
var InboundAttachKinds = []string{"pdf", "tiff"}

// HasInbound reports whether the config routes received faxes.
func (c *Config) HasInbound() bool {
	return c.Inbound != nil && (len(c.Inbound.Routes) > 0 || c.Inbound.Default != nil)
}

// inboundReserved are the route names the gateway gives its own routes
// (host/inbound: the default route and the unrouted folder).
var inboundReserved = []string{"default", "unrouted"}

// InboundKey is the config path of a route's key: "inbound.routes.2.match".
func InboundKey(route int, key string) string {
	if route < 0 {
		return join("inbound.default", key)
	}
	return join("inbound.routes."+strconv.Itoa(route), key)
}

func (c *Config) checkInbound(e *Error) {
	in := c.Inbound
	if in == nil {
		return
	}
	names := map[string]bool{}
	for i := range in.Routes {
		r := &in.Routes[i]
		if r.Name == "" {
			r.Name = fmt.Sprintf("route%d", i+1)
		}
		if names[r.Name] {
			e.add("%s: inbound route %q: the name is used twice", c.At(InboundKey(i, "name")), r.Name)
		}
		if slices.Contains(inboundReserved, r.Name) {
			// The route's folder driver would be the default's or the
			// unrouted folder's, and its faxes would land there.
			e.add("%s: inbound route %q: the name is reserved (%s name the default route and the folder of faxes no route takes)",
				c.At(InboundKey(i, "name")), r.Name, strings.Join(inboundReserved, " and "))
		}
		names[r.Name] = true
		c.checkTarget(e, &r.InboundTarget, i, "inbound route "+r.Name)
	}
	if in.Default != nil {
		c.checkTarget(e, in.Default, -1, "inbound default")
	}
}

func (c *Config) checkTarget(e *Error, t *InboundTarget, route int, what string) {
	key := func(k string) string { return InboundKey(route, k) }
	if t.Mail == nil && t.Folder == "" {
		e.add("%s: %s: no target: give mail: {connector, to, from} or folder: DIR", c.At(key("")), what)
		return
	}
	m := t.Mail
	if m == nil {
		return
	}
	if m.Connector == "" {
		e.add("%s: %s: mail.connector is missing (the connector that sends the mail)", c.At(key("mail")), what)
	} else if _, ok := c.Connectors[m.Connector]; !ok {
		e.add("%s: %s: mail.connector %q is not defined under connectors:", c.At(key("mail.connector")), what, m.Connector)
	}
	if len(m.To) == 0 {
		e.add("%s: %s: mail.to is missing (one address or more)", c.At(key("mail")), what)
	}
	for j, a := range m.To {
		if _, err := mail.ParseAddress(a); err != nil {
			e.add("%s: %s: mail.to %q: %v", c.At(key("mail.to."+strconv.Itoa(j))), what, a, err)
		}
	}
	if m.From == "" {
		e.add("%s: %s: mail.from is missing (the address the mail comes from)", c.At(key("mail")), what)
	} else if _, err := mail.ParseAddress(m.From); err != nil {
		e.add("%s: %s: mail.from %q: %v", c.At(key("mail.from")), what, m.From, err)
	}
	if len(m.Attach) == 0 {
		m.Attach = []string{"pdf"}
	}
	for j, a := range m.Attach {
		if !slices.Contains(InboundAttachKinds, a) {
			e.add("%s: %s: mail.attach %q: want pdf or tiff", c.At(key("mail.attach."+strconv.Itoa(j))), what, a)
		}
	}
}

// keyLines records the line of every key and list item under node, as
// "prefix.key" and "prefix.N", for messages that point into a section.
func keyLines(n *yaml.Node, prefix string, out map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := join(prefix, n.Content[i].Value)
			out[k] = n.Content[i].Line
			keyLines(n.Content[i+1], k, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			k := join(prefix, strconv.Itoa(i))
			out[k] = c.Line
			keyLines(c, k, out)
		}
	}
}
