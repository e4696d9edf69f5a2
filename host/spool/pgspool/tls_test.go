package pgspool

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mediagw/mediagw/internal/pgtest"
)

// pki is a private CA in dir: its certificate's PEM file, and issue for
// the certificates it signs.
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newPKI(t *testing.T, dir, name string) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &pki{dir: dir, caCert: cert, caKey: key, caFile: filepath.Join(dir, name+".pem")}
	writePEM(t, p.caFile, "CERTIFICATE", der)
	return p
}

func (p *pki) issue(t *testing.T, name string, dns []string, ips []net.IP, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: dns, IPAddresses: ips, ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kb)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLS: spool.tls against a PostgreSQL server with TLS on (its
// certificate signed by a private CA, which also signs client certificates): the
// store connects over TLS with the CA, the server name and a client
// certificate; a foreign CA or a wrong server name is refused.
func TestTLS(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	// A folder the server's user can enter (t.TempDir's parent is private).
	dir, err := os.MkdirTemp("", "pgspool-tls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ca := newPKI(t, dir, "ca")
	other := newPKI(t, dir, "other-ca")
	srvCert, srvKey := ca.issue(t, "server", []string{"db.example.org"}, []net.IP{net.ParseIP("127.0.0.1")}, x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.issue(t, "postgres", nil, nil, x509.ExtKeyUsageClientAuth)
	if os.Geteuid() == 0 { // the server runs as postgres: its files must be its own
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, f := range []string{dir, ca.caFile, srvCert, srvKey} {
			if err := os.Chown(f, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	admin, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"ALTER SYSTEM SET ssl = on",
		"ALTER SYSTEM SET ssl_cert_file = '" + srvCert + "'",
		"ALTER SYSTEM SET ssl_key_file = '" + srvKey + "'",
		"ALTER SYSTEM SET ssl_ca_file = '" + ca.caFile + "'",
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	admin.Close()
	srv.Restart(false)

	for _, tc := range []struct {
		name    string
		tls     TLS
		refused func(error) bool
	}{
		{"the CA, the server name and a client certificate", TLS{CAFile: ca.caFile, ServerName: "db.example.org", CertFile: cliCert, KeyFile: cliKey}, nil},
		{"the CA, the DSN's host (an IP in the certificate)", TLS{CAFile: ca.caFile}, nil},
		{"another CA", TLS{CAFile: other.caFile, ServerName: "db.example.org"}, func(err error) bool {
			var ua x509.UnknownAuthorityError
			return errors.As(err, &ua)
		}},
		{"another server name", TLS{CAFile: ca.caFile, ServerName: "evil.example.org"}, func(err error) bool {
			var he x509.HostnameError
			return errors.As(err, &he)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tlsCfg := tc.tls
			s, err := Open(ctx, Config{DSN: strings.Replace(dsn, "sslmode=disable", "sslmode=require", 1), TLS: &tlsCfg, Migrate: true})
			if tc.refused != nil {
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded")
				}
				if !tc.refused(err) {
					t.Fatalf("Open = %v, want the certificate refused", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var ssl bool
			var clientDN string
			if err := s.pool.QueryRow(ctx, `SELECT ssl, coalesce(client_dn, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl, &clientDN); err != nil || !ssl {
				t.Fatalf("connection over TLS = %v, %v", ssl, err)
			}
			if tlsCfg.CertFile != "" && !strings.Contains(clientDN, "CN=postgres") {
				t.Errorf("the server saw client certificate %q, want CN=postgres", clientDN)
			}
		})
	}
}
