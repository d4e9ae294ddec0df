// Command ferretdb runs FerretDB (MongoDB wire protocol) with its SQLite
// backend for the local dev/test stack. It embeds the upstream
// github.com/FerretDB/FerretDB/ferretdb package and adds nothing to it but
// flags and signal handling.
//
//	ferretdb -listen 127.0.0.1:27017 -data .run/ferretdb/data
//
// It stops gracefully (listener and connections closed, SQLite files
// flushed) on SIGTERM or SIGINT, and exits non-zero if it cannot start.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data", "data", "directory for the SQLite database files (created if missing)")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn, error")
	flag.Parse()

	logger, err := newLogger(*logLevel)
	if err != nil {
		fail(err)
	}

	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		fail(fmt.Errorf("data directory %q: %w", *dataDir, err))
	}
	if err = os.MkdirAll(dir, 0o755); err != nil {
		fail(fmt.Errorf("data directory %q: %w", dir, err))
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		fail(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger.Warn("ferretdb starting", "listen", *listen, "data", dir)
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
