// Command ferretdb-server runs the embeddable FerretDB v1.24.2 with the SQLite backend.
//
// It exists because `go install .../cmd/ferretdb@v1.24.2` builds a binary that panics at
// start (it needs a generated build/version/version.txt); the embeddable package has no such
// requirement. It is a test and development server only: no TLS, no authentication.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/build/version"
	"github.com/FerretDB/FerretDB/ferretdb"
)

const ferretDBModule = "github.com/FerretDB/FerretDB"

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on (host:port)")
	stateDir := flag.String("state-dir", "", "directory holding the SQLite database files (required)")
	logLevel := flag.String("log-level", "info", "log level: debug, info, warn or error")
	exitOnStdinClose := flag.Bool("exit-on-stdin-close", false,
		"shut down when standard input is closed (a launcher holding a pipe died)")
	flag.Parse()

	if err := run(*listenAddr, *stateDir, *logLevel, *exitOnStdinClose); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-server: %s\n", err)
		os.Exit(1)
	}
}

func run(listenAddr, stateDir, logLevel string, exitOnStdinClose bool) error {
	if stateDir == "" {
		return fmt.Errorf("-state-dir is required")
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("bad -log-level %q: %w", logLevel, err)
	}

	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}

	if err = os.MkdirAll(dir, 0o700); err != nil {
		return err
	}

	// FerretDB's SQLite backend takes a directory URI that must end with a slash.
	sqliteURL := (&url.URL{Scheme: "file", Path: strings.TrimSuffix(dir, "/") + "/"}).String()

	// The embeddable package reports version "unknown"; report the module version we link, so
	// that clients see it in buildInfo.ferretdbVersion.
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == ferretDBModule {
				version.Get().Version = dep.Version
			}
		}
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	logger.Info("ferretdb-server starting", "version", version.Get().Version,
		"listen_addr", listenAddr, "sqlite_url", sqliteURL)

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listenAddr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if exitOnStdinClose {
		// A test launcher keeps the write end of a pipe open; if it is killed without a chance
		// to stop us, the pipe closes and we exit instead of lingering as an orphan.
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			logger.Info("standard input closed, shutting down")
			stop()
		}()
	}

	// Run blocks until ctx is canceled, then closes the listener, connections and backend.
	if err = f.Run(ctx); err != nil {
		return err
	}

	logger.Info("ferretdb-server stopped")

	return nil
}
