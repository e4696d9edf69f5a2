// Package hoste2e holds black-box tests of the o365 connector under the host:
// they build the mediagw and mediagw-connector-o365 binaries into one folder
// and run them with a config, as an operator would, against a real Dovecot
// that checks tokens from the identity stand-in (o365test). The package has
// no code of its own.
package hoste2e
