// Command ferretdb runs FerretDB (MongoDB wire protocol) for the local
// dev/test stack, on its PostgreSQL backend (the default) or its SQLite one.
// It embeds github.com/FerretDB/FerretDB/ferretdb, built by scripts/stack.sh
// with tools/ferretdb/patches applied, and adds flags and signal handling.
//
//	ferretdb -listen 127.0.0.1:27017 -postgresql-url 'postgres:///ferretdb?host=/run/dir'
//	ferretdb -listen 127.0.0.1:27017 -backend sqlite -data .run/ferretdb/data
//
// With PostgreSQL it turns on the patch's TypedPushdown (range, $in, sort and
// LIMIT in SQL; see patches/0001-typed-pushdown.patch): exact for the
// service's collections, whose filtered and sorted fields each hold one
// scalar type. -typed-pushdown=false gives upstream behaviour.
//
// It stops gracefully (listener and connections closed) on SIGTERM or
// SIGINT, and exits non-zero if it cannot start.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only with -debug-addr
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	backend := flag.String("backend", "postgresql", "backend: postgresql or sqlite")
	pgURL := flag.String("postgresql-url", "postgres://127.0.0.1:5432/ferretdb", "PostgreSQL URL (backend postgresql)")
	typedPushdown := flag.Bool("typed-pushdown", true, "push range, $in, sort and LIMIT down to PostgreSQL (patch)")
	dataDir := flag.String("data", "data", "directory for the SQLite database files, created if missing (backend sqlite)")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn, error")
	gcPercent := flag.Int("gc-percent", 400, "Go's GC target (GOGC) unless the GOGC environment variable is set")
	debugAddr := flag.String("debug-addr", "", "serve Go's pprof on this address, e.g. 127.0.0.1:6060 (off when empty)")
	flag.Parse()

	logger, err := newLogger(*logLevel)
	if err != nil {
		fail(err)
	}

	config := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Logger:   logger,
		Handler:  *backend,
	}
	where := *pgURL

	switch *backend {
	case "postgresql":
		config.PostgreSQLURL = *pgURL
		config.TypedPushdown = *typedPushdown
	case "sqlite":
		dir, err := filepath.Abs(*dataDir)
		if err != nil {
			fail(fmt.Errorf("data directory %q: %w", *dataDir, err))
		}
		if err = os.MkdirAll(dir, 0o755); err != nil {
			fail(fmt.Errorf("data directory %q: %w", dir, err))
		}
		config.SQLiteURL = "file:" + dir + "/"
		where = dir
	default:
		fail(fmt.Errorf("-backend %q: want postgresql or sqlite", *backend))
	}

	// FerretDB allocates for every document it decodes and encodes, on a live
	// heap of a few MB: with Go's default GOGC=100 it collects many times a
	// second, and the collector and its write barriers cost the mix bench
	// 40 % of FerretDB's CPU (3.1 against 1.9 ms per request, alternated).
	// 400 trades tens of MB of heap for that CPU.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(*gcPercent)
	}

	if *debugAddr != "" {
		go func() { logger.Warn("debug server stopped", "error", http.ListenAndServe(*debugAddr, nil)) }()
	}

	f, err := ferretdb.New(config)
	if err != nil {
		fail(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger.Warn("ferretdb starting", "listen", *listen, "backend", *backend, "at", where,
		"typed_pushdown", config.TypedPushdown)
	if err = f.Run(ctx); err != nil {
		fail(err)
	}
	logger.Warn("ferretdb stopped")
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("-log-level %q: %w", level, err)
	}
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})
	return slog.New(h), nil
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
	os.Exit(1)
}
