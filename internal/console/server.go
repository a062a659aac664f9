// Package console is gohsm's console: a local HTTP server with a JSON API
// under /api/v1/ (the CLI's capabilities, over the same token API: every
// rule is the library's) and the embedded web UI on it (docs/console.md).
//
// Each web session is a login of its own: its own token.Module, opened as
// the CLI opens one, and its own PKCS#11 session logged in with the
// user's name and password, so lockout, roles, shares and quorum are the
// token's decisions, never the console's.
package console

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"gohsm/internal/ck"
	"gohsm/internal/strictjson"
	"gohsm/token"
)

// Options configure a console.
type Options struct {
	// Config is the configuration file ("" for the CLI's search:
	// $GOHSM_CONF, XDG, /etc, the embedded default).
	Config string
	// Slot or Label select the default slot of a login (neither: the
	// first slot); a login may name another.
	Slot  *uint
	Label string
	// Listen is the address to listen on (default 127.0.0.1:8611). A
	// host that is not loopback needs TLSCert and TLSKey.
	Listen          string
	TLSCert, TLSKey string
	// SessionIdle and SessionMax bound a web session: idle time (default
	// 15m) and lifetime (default 8h).
	SessionIdle, SessionMax time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Stdout gets the one "listening on" line (default os.Stdout).
	Stdout io.Writer
	// Log gets the console's own errors (default: standard error).
	Log *slog.Logger
}

// Defaults of Options.
const (
	DefaultListen      = "127.0.0.1:8611"
	DefaultSessionIdle = 15 * time.Minute
	DefaultSessionMax  = 8 * time.Hour
	// MaxSessions is the most live web sessions (each holds a module).
	MaxSessions = 32
	maxBody     = 1 << 20   // request bodies
	maxPlanBody = 256 << 10 // a fault plan
)

// ListenError is a listen address the console refuses: a host beyond
// loopback without TLS, or half a TLS configuration. gohsm console exits
// with its usage code on it.
type ListenError struct{ Msg string }

func (e *ListenError) Error() string { return e.Msg }

// Route is one row of the API's route table: a method and a path pattern
// in ServeMux (and OpenAPI) syntax, "/api/v1/keys/{handle}".
type Route struct {
	Method, Pattern string
}

// Server is a console.
type Server struct {
	opts   Options
	now    func() time.Time
	log    *slog.Logger
	tls    *tls.Config
	slot   ck.ULong // the default slot
	mux    *http.ServeMux
	routes []Route

	toolMu sync.Mutex
	tool   *token.Module // for what needs no login (slots)

	sessions *sessions
	samplers samplers

	srvMu   sync.Mutex
	servers []*http.Server
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
}

// New checks opts (the listen policy, the configuration, the default
// slot) and makes a console; Serve serves it.
func New(opts Options) (*Server, error) {
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = DefaultSessionIdle
	}
	if opts.SessionMax <= 0 {
		opts.SessionMax = DefaultSessionMax
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	s := &Server{opts: opts, now: opts.Now, log: opts.Log, done: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	cfg, err := listenPolicy(opts.Listen, opts.TLSCert, opts.TLSKey)
	if err != nil {
		return nil, err
	}
	s.tls = cfg
	m, err := token.OpenTool(opts.Config)
	if err != nil {
		return nil, err
	}
	s.tool = m
	if s.slot, err = defaultSlot(m, opts.Slot, opts.Label); err != nil {
		m.Close()
		return nil, err
	}
	s.sessions = newSessions(s)
	s.mux = http.NewServeMux()
	s.register()
	s.wg.Add(1)
	go s.sweep()
	return s, nil
}

// listenPolicy applies D3: beyond loopback only with TLS; TLS 1.2+ when
// a certificate is given.
func listenPolicy(addr, certFile, keyFile string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &ListenError{fmt.Sprintf("--listen %q: want HOST:PORT (%v)", addr, err)}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, &ListenError{"--tls-cert and --tls-key go together: give both"}
	}
	if certFile == "" {
		if !isLoopback(host) {
			return nil, &ListenError{fmt.Sprintf("--listen %s is not a loopback address: listening beyond this machine needs --tls-cert FILE --tls-key FILE", addr)}
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, &ListenError{fmt.Sprintf("--tls-cert/--tls-key: %v", err)}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// isLoopback: 127.0.0.0/8, ::1 or localhost; an empty host or an
// unspecified address listens everywhere, so it is not.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// defaultSlot is the slot --slot or --token names, else the first.
func defaultSlot(m *token.Module, slot *uint, label string) (ck.ULong, error) {
	if slot != nil && label != "" {
		return 0, &ListenError{"--slot and --token both select a slot: give one"}
	}
	if slot != nil {
		if _, err := m.Slot(ck.ULong(*slot)); err != nil {
			return 0, fmt.Errorf("slot %d: %w", *slot, err)
		}
		return ck.ULong(*slot), nil
	}
	ids := m.SlotIDs()
	if len(ids) == 0 {
		return 0, fmt.Errorf("configuration has no slot")
	}
	if label == "" {
		return ids[0], nil
	}
	var found []ck.ULong
	for _, id := range ids {
		sl, err := m.Slot(id)
		if err != nil {
			return 0, err
		}
		if ti, err := sl.TokenInfo(); err == nil && strings.TrimRight(ti.Label, " ") == label {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("no token labelled %q ('gohsm token list' shows the labels)", label)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("%d tokens are labelled %q: use --slot", len(found), label)
}

// Handler is the console's HTTP handler: security headers, panics
// recovered, the API and the UI.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Cache-Control", "no-store")
			if !s.hostAllowed(r.Host) {
				s.writeError(w, r, errorf(http.StatusForbidden, codeCSRF,
					"Host %q is not this console's: use a loopback address or the --listen host", r.Host))
				return
			}
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("console: panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeJSON(w, http.StatusInternalServerError, errorBody{errorDetail{Code: codeInternal,
					Message: "internal error (a bug in the console: please report it)"}})
			}
		}()
		s.mux.ServeHTTP(w, r)
	})
}

// hostAllowed guards against DNS rebinding: a page of evil.example whose
// name comes to resolve to 127.0.0.1 is same-origin with the console by
// its Origin and Host, so only the Host's name tells it apart. Loopback
// names and addresses and the --listen host are the console's own; under
// TLS the certificate binds the name (a browser refuses another).
func (s *Server) hostAllowed(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
	}
	if isLoopback(host) || s.tls != nil {
		return true
	}
	lh, _, _ := net.SplitHostPort(s.opts.Listen)
	return lh != "" && strings.EqualFold(host, lh)
}

// Routes is the API's route table.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// ListenAndServe listens on Options.Listen and serves until Close.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve serves on ln (over TLS when the options give a certificate) until
// Close, after printing the one line that says where.
func (s *Server) Serve(ln net.Listener) error {
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
		ln = tls.NewListener(ln, s.tls)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.srvMu.Lock()
	if s.closed {
		s.srvMu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, srv)
	s.srvMu.Unlock()
	fmt.Fprintf(s.opts.Stdout, "gohsm console: listening on %s://%s/\n", scheme, ln.Addr())
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops serving, logs out and closes every web session's module.
func (s *Server) Close() error {
	s.srvMu.Lock()
	if s.closed {
		s.srvMu.Unlock()
		return nil
	}
	s.closed = true
	servers := s.servers
	s.srvMu.Unlock()
	for _, srv := range servers {
		srv.Close()
	}
	close(s.done)
	s.wg.Wait()
	s.sessions.closeAll()
	s.closeSamplers()
	s.toolMu.Lock()
	defer s.toolMu.Unlock()
	return s.tool.Close()
}

// decodeJSON reads r's body into v: JSON by its Content-Type, at most
// limit bytes, one value, no field v does not have, and every field's
// name exactly as v declares it (encoding/json alone would take
// "USERNAME" for "username").
func decodeJSON(r *http.Request, limit int64, v any) error {
	b, err := readBody(r, limit)
	if err != nil {
		return err
	}
	err = strictjson.Decode(b, v)
	var ne *strictjson.NameError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ne):
		return badRequest("body: %v", ne)
	case errors.Is(err, strictjson.ErrTrailing):
		return badRequest("body: more than one JSON value")
	}
	return bodyError(err, limit)
}

// readBody reads r's JSON body whole (at most limit bytes).
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if err := jsonContent(r); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		return nil, bodyError(err, limit)
	}
	return b, nil
}

// kind words a Go kind for a JSON value's reader.
func kind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer of 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

func jsonContent(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &apiError{status: http.StatusUnsupportedMediaType, code: codeBadRequest,
			msg: "body: Content-Type must be application/json"}
	}
	return nil
}

func bodyError(err error, limit int64) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &apiError{status: http.StatusRequestEntityTooLarge, code: codeBadRequest,
			msg: fmt.Sprintf("body: larger than %d bytes", limit)}
	case errors.Is(err, io.EOF):
		return badRequest("body: empty (want a JSON object)")
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return badRequest("body: %s: %s is not %s", te.Field, te.Value, kind(te.Type.Kind()))
	}
	return badRequest("body: %s", strings.TrimPrefix(err.Error(), "json: "))
}
