package main

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gohsm/internal/console"
)

// consoleCmd is `gohsm console`: the local web UI and JSON API
// (docs/console.md) on the configuration and default slot the global
// flags select, until SIGINT or SIGTERM.
func consoleCmd(fs *flag.FlagSet) func(*env) error {
	listen := fs.String("listen", console.DefaultListen, "`address` to listen on (beyond loopback only with --tls-cert and --tls-key)")
	cert := fs.String("tls-cert", "", "TLS certificate `file` (PEM)")
	key := fs.String("tls-key", "", "TLS private key `file` (PEM)")
	idle := fs.Duration("session-idle", console.DefaultSessionIdle, "a web session ends after this `duration` without a request")
	max := fs.Duration("session-max", console.DefaultSessionMax, "a web session ends this `duration` after its login")
	return func(e *env) error {
		if *idle <= 0 || *max <= 0 {
			return usagef("--session-idle and --session-max must be positive")
		}
		opts := console.Options{Config: e.g.config, Label: e.g.label, Listen: *listen,
			TLSCert: *cert, TLSKey: *key, SessionIdle: *idle, SessionMax: *max, Stdout: e.stdout,
			Log: slog.New(slog.NewTextHandler(e.stderr, nil))}
		if e.g.slotSet {
			n := uint(e.g.slot)
			opts.Slot = &n
		}
		srv, err := console.New(opts)
		var le *console.ListenError
		if errors.As(err, &le) {
			return usagef("%s", le.Msg)
		}
		if err != nil {
			return configErr(err)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(sig)
		served := make(chan error, 1)
		go func() { served <- srv.ListenAndServe() }()
		select {
		case err = <-served:
		case <-sig:
		}
		done := make(chan struct{})
		go func() { srv.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		return err
	}
}
