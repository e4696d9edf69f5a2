package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/pgtest"
	"github.com/mediagw/mediagw/internal/testenv"
)

// BenchmarkMaildirToFile: small mails from a Maildir through the maildir
// plugin, the pipeline, the spool and the file driver (the example config),
// settled (in cur/) and written, beside a plain loop doing by hand what the
// gateway must do at least for each mail: read it from new/, write it to the
// output folder through a temporary name with fsync and rename, move it to
// cur/, and fsync the three folders. b.N mails, all in new/ before the
// clock starts; the gateway's clock starts once its plugin runs. The
// gateway runs on its bbolt spool, then on a PostgreSQL spool (a private
// cluster on loopback, fsync on).
func BenchmarkMaildirToFile(b *testing.B) {
	b.Run("plain-loop", func(b *testing.B) {
		dir := b.TempDir()
		for _, d := range []string{"new", "cur", "out"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		for i := range b.N {
			if err := os.WriteFile(filepath.Join(dir, "new", fmt.Sprintf("m%05d.eml", i)), mail(i), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		syncDir := func(d string) {
			f, err := os.Open(filepath.Join(dir, d))
			if err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		b.ResetTimer()
		es, err := os.ReadDir(filepath.Join(dir, "new"))
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range es {
			src := filepath.Join(dir, "new", e.Name())
			raw, err := os.ReadFile(src)
			if err != nil {
				b.Fatal(err)
			}
			tmp := filepath.Join(dir, "out", "."+e.Name())
			f, err := os.Create(tmp)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Write(raw); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
			if err := os.Rename(tmp, filepath.Join(dir, "out", e.Name())); err != nil {
				b.Fatal(err)
			}
			syncDir("out")
			if err := os.Rename(src, filepath.Join(dir, "cur", e.Name()+":2,S")); err != nil {
				b.Fatal(err)
			}
			syncDir("new")
			syncDir("cur")
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	})
	for _, backend := range []string{"bbolt", "postgres"} {
		name := "gateway"
		if backend == "postgres" {
			name = "gateway-postgres"
		}
		b.Run(name, func(b *testing.B) {
			s := newSite(b)
			if backend == "postgres" {
				b.Setenv("MEDIAGW_BENCH_DSN", pgtest.Start(b).NewDB(b))
				s.editConfig("  dir: var/spool", "  backend: postgres\n  dsn: env:MEDIAGW_BENCH_DSN")
			}
			benchGateway(b, s)
		})
	}
}

// benchGateway runs the gateway of site s on b.N mails.
func benchGateway(b *testing.B, s *site) {
	{ //nolint:gocritic // the body of the former b.Run, kept as it was
		for i := range b.N {
			s.drop(fmt.Sprintf("m%05d.eml", i), mail(i))
		}
		g := s.start()
		g.pluginPid(b)
		b.ResetTimer()
		deadline := time.Now().Add(10 * time.Minute)
		for s.count("var/Maildir/cur") < b.N || s.count("var/archive") < b.N {
			if time.Now().After(deadline) {
				b.Fatalf("%d settled, %d written of %d; log:\n%s", s.count("var/Maildir/cur"), s.count("var/archive"), b.N, testenv.Tail(g.logText(), 30))
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		g.stop(b)
	}
}
