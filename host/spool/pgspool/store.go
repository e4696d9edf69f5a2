// Package pgspool is the spool on PostgreSQL, shared by several gateways:
// one queue, each message's source id taken once (a unique constraint),
// its documents stored once, jobs leased with FOR UPDATE SKIP LOCKED and a
// lease expiry, idle workers woken by LISTEN/NOTIFY, writes committed in
// groups. It keeps the spool.Store contract.
package pgspool

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mediagw/mediagw/host/spool"
)

var _ spool.Store = (*Store)(nil)

// Config says where the database is and who this gateway is.
type Config struct {
	// DSN is a PostgreSQL connection string (URL or key=value). It is a
	// secret: errors name the database without its password.
	DSN string
	// Gateway is this gateway's name: the prefix of every lease it holds
	// (gateway/holder), so that a gateway's leases can be told apart.
	Gateway string
	// TLS, when set, is the client's TLS (it replaces the DSN's sslmode).
	TLS *TLS
	// Migrate applies pending schema migrations on Open; without it Open
	// fails with ErrSchemaBehind when some are pending.
	Migrate bool
	// ConnectTimeout bounds a connection attempt (default 5 s), so that a
	// call fails fast while the database is unreachable.
	ConnectTimeout time.Duration
}

// TLS is the client side of a TLS connection to the database.
type TLS struct {
	CAFile     string // the CA that signed the server's certificate (empty: the system's)
	CertFile   string // client certificate, with KeyFile (optional)
	KeyFile    string
	ServerName string // the name in the server's certificate (default: the DSN's host)
}

// Channel is the NOTIFY channel: the payload is the name of a driver whose
// jobs may have become due.
const Channel = "mediagw_jobs"

// Store is the spool on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	// leases takes and renews leases on connections of their own (the
	// committer's batches do not hold them up). A lease is committed like
	// any write: one lost in a crash of the database would hand a job that
	// is on the line to a second gateway.
	leases  *pgxpool.Pool
	gateway string
	c       *committer
	health  *spool.HealthTracker

	wakeMu sync.Mutex
	wakes  []func(driver string)

	closed   atomic.Bool
	pings    atomic.Int64       // pings of the silent listening connection
	cancel   context.CancelFunc // stops the listener
	listenWG sync.WaitGroup
}

// PoolConfig parses cfg into a pool configuration (TLS, timeouts), with
// errors that do not show the DSN's password.
func PoolConfig(cfg Config) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("pgspool: the DSN %s: %w", Redact(cfg.DSN), redactErr(err, cfg.DSN))
	}
	if cfg.ConnectTimeout > 0 {
		pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	} else if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if !strings.Contains(cfg.DSN, "pool_max_conns") {
		pc.MaxConns = 16
	}
	if cfg.TLS != nil {
		tc, err := cfg.TLS.config(pc.ConnConfig.Host)
		if err != nil {
			return nil, err
		}
		pc.ConnConfig.TLSConfig = tc
		for _, fb := range pc.ConnConfig.Fallbacks {
			fb.TLSConfig = tc
		}
	}
	return pc, nil
}

func (t *TLS) config(host string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if tc.ServerName == "" && !strings.HasPrefix(host, "/") {
		tc.ServerName = host
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("pgspool: tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("pgspool: tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("pgspool: tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Redact is the DSN without its password, to name the database in errors
// and logs.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.Host != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		for k := range q {
			if strings.HasSuffix(strings.ToLower(k), "password") {
				q.Set(k, "xxxxx")
				u.RawQuery = q.Encode()
			}
		}
		return u.String()
	}
	if strings.Contains(dsn, "://") { // a URL that does not parse
		dsn = urlPassword.ReplaceAllString(dsn, "${1}xxxxx@")
		return queryPassword.ReplaceAllString(dsn, "${1}xxxxx")
	}
	// key=value form: drop the value of password= (and sslpassword=),
	// however it is spaced or quoted.
	return kvPassword.ReplaceAllString(dsn, "${1}=xxxxx")
}

var (
	urlPassword   = regexp.MustCompile(`(://[^:/@]*:)[^@]*@`)
	queryPassword = regexp.MustCompile(`([?&]\w*password=)[^&]*`)
	// kvPassword is a key=value DSN's password: libpq allows blanks
	// around '=' and a value in single quotes with backslash escapes.
	kvPassword = regexp.MustCompile(`(?i)\b(\w*password)\s*=\s*('(?:\\.|[^'\\])*'?|\S*)`)
)

// redactErr keeps err matchable (errors.Is/As) while its text loses the
// DSN's password, should a driver ever print it.
func redactErr(err error, dsn string) error {
	pw := password(dsn)
	if err == nil || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return &redacted{err: err, msg: strings.ReplaceAll(err.Error(), pw, "xxxxx")}
}

type redacted struct {
	err error
	msg string
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

func password(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if pw, ok := u.User.Password(); ok {
			return pw
		}
		return u.Query().Get("password")
	}
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		if strings.EqualFold(m[1], "password") {
			return unquote(m[2])
		}
	}
	return ""
}

// unquote is a key=value DSN's value without its quotes and escapes.
func unquote(v string) string {
	if !strings.HasPrefix(v, "'") {
		return v
	}
	v = strings.TrimSuffix(strings.TrimPrefix(v, "'"), "'")
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// Open connects to the database, checks (or, with Migrate, brings up to
// date) its schema and starts the committer and the listener. It fails
// when the database cannot be reached.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	pc, err := PoolConfig(cfg)
	if err != nil {
		return nil, err
	}
	pool, err := connect(ctx, pc, cfg.DSN)
	if err != nil {
		return nil, err
	}
	if cfg.Migrate {
		_, err = Migrate(ctx, pool)
	} else {
		err = checkSchema(ctx, pool)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	gw := cfg.Gateway
	if gw == "" {
		gw, _ = os.Hostname()
	}
	lc := pc.Copy()
	lc.MaxConns = max(4, pc.MaxConns/2)
	leases, err := pgxpool.NewWithConfig(ctx, lc)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgspool: connect to %s: %w", Redact(cfg.DSN), redactErr(err, cfg.DSN))
	}
	s := &Store{pool: pool, leases: leases, gateway: gw}
	var quarantined int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM quarantine`).Scan(&quarantined); err != nil {
		pool.Close()
		leases.Close()
		return nil, fmt.Errorf("pgspool: count the quarantine: %w", err)
	}
	s.health = spool.NewHealthTracker(time.Now, quarantined)
	s.startCommitter()
	lctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.listenWG.Add(1)
	go s.listen(lctx, pc.ConnConfig.Copy())
	return s, nil
}

// Pool is the store's connection pool (for the tables of several gateways
// that live beside the queue).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Gateway is this gateway's name, the prefix of its leases.
func (s *Store) Gateway() string { return s.gateway }

// holder is the lease holder as stored: gateway/holder.
func (s *Store) holder(h string) string { return s.gateway + "/" + h }

// Close stops the listener and the committer and closes the pool. Calls
// after Close return spool.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	s.listenWG.Wait()
	s.stopCommitter()
	s.pool.Close()
	s.leases.Close()
	return nil
}

// Wake registers f, called when jobs of a driver may have become due:
// NOTIFY from any gateway (this one included), and for every driver with
// queued jobs after the listener reconnected.
func (s *Store) Wake(f func(driver string)) {
	s.wakeMu.Lock()
	s.wakes = append(s.wakes, f)
	s.wakeMu.Unlock()
}

func (s *Store) wake(driver string) {
	s.wakeMu.Lock()
	fs := s.wakes
	s.wakeMu.Unlock()
	for _, f := range fs {
		f(driver)
	}
}

// Health is the store's state: degraded while the database cannot be
// reached or refuses writes, with the error.
func (s *Store) Health() spool.Health { return s.health.Health() }

// OnHealthChange sets a function called once per change of health.
func (s *Store) OnHealthChange(f func(old, new spool.Health)) { s.health.OnHealthChange(f) }

// OnQuarantine sets a function called for every entry quarantined.
func (s *Store) OnQuarantine(f func(spool.Quarantined)) { s.health.OnQuarantine(f) }

// Deferred records that a mail could not be taken because of the store.
func (s *Store) Deferred(err error) { s.health.Deferred(err) }

// observe feeds the health tracker with the result of a call that reached
// for the database: an error of the database (unreachable, refused) makes
// the store degraded, a success healthy; the contract's own answers
// (not found, lease lost) say nothing of the database.
func (s *Store) observe(err error) error { return s.health.Observe(err) }

func pgError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}
