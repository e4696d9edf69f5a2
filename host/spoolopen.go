package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/host/spool/pgspool"
)

// OpenSpool opens the spool backend the config chooses: the bbolt file in
// spool.dir (the default), or the PostgreSQL database of spool.dsn, whose
// schema is migrated on start unless spool.migrate is manual.
func OpenSpool(ctx context.Context, cfg *config.Config) (spool.Store, error) {
	if cfg.Spool.Backend == config.BackendPostgres {
		s, err := pgspool.Open(ctx, PGConfig(cfg, cfg.Spool.Migrate != "manual"))
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	dir := cfg.Resolve(cfg.Spool.Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s, err := spool.Open(filepath.Join(dir, "spool.db"))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// PGConfig is the PostgreSQL spool's configuration from the config file.
func PGConfig(cfg *config.Config, migrate bool) pgspool.Config {
	pc := pgspool.Config{DSN: cfg.Spool.DSN.Reveal(), Gateway: cfg.Gateway, Migrate: migrate}
	if t := cfg.Spool.TLS; t != (config.SpoolTLS{}) {
		pc.TLS = &pgspool.TLS{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName}
	}
	return pc
}
