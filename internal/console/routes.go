package console

import (
	"errors"
	"io/fs"
	"net/http"
	"strings"

	"gohsm/internal/ck"
	"gohsm/token/cluster"
)

// call is one API request: its session (nil on the routes that need
// none, locked on the others).
type call struct {
	w  http.ResponseWriter
	r  *http.Request
	ws *webSession
}

// A handler returns the status and the body to answer (JSON, or a
// rawBody), or an error for writeError. A nil body with status 204
// answers nothing.
type handler func(c *call) (int, any, error)

// rawBody is a response that is not JSON: a download.
type rawBody struct {
	contentType string
	filename    string // Content-Disposition attachment, when set
	data        []byte
}

// streamBody is a download written as it is made (a backup): its
// headers go out with its first byte, so an error before that is still
// answered as JSON.
type streamBody struct {
	contentType string
	filename    string
	write       func(w *lazyWriter) error
}

// lazyWriter sends the status and headers at the first Write.
type lazyWriter struct {
	w       http.ResponseWriter
	status  int
	header  func(http.Header)
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.header(l.w.Header())
		l.w.WriteHeader(l.status)
	}
	return l.w.Write(p)
}

// register is the route table: every route of D2, the handler and
// whether it needs a session.
func (s *Server) register() {
	const v1 = "/api/v1"
	for _, rt := range []struct {
		method, path string
		auth         bool
		h            handler
	}{
		{"GET", "/openapi.yaml", false, s.openAPI},
		{"GET", "/slots", false, s.getSlots},
		{"POST", "/session", false, s.login},
		{"GET", "/session", true, s.getSession},
		{"DELETE", "/session", true, s.logout},

		{"GET", "/token", true, s.getToken},
		{"GET", "/token/backup", true, s.backup},

		{"GET", "/users", true, s.listUsers},
		{"POST", "/users", true, s.createUser},
		{"DELETE", "/users/{username}", true, s.deleteUser},
		{"PUT", "/users/{username}/password", true, s.setPassword},

		{"GET", "/keys", true, s.listKeys},
		{"POST", "/keys", true, s.generateKey},
		{"POST", "/keys/import", true, s.importKey},
		{"GET", "/keys/{handle}", true, s.getKey},
		{"DELETE", "/keys/{handle}", true, s.deleteKey},
		{"PUT", "/keys/{handle}/shares/{username}", true, s.shareKey(true)},
		{"DELETE", "/keys/{handle}/shares/{username}", true, s.shareKey(false)},
		{"PUT", "/keys/{handle}/trusted", true, s.setTrusted},

		{"GET", "/audit", true, s.getAudit},
		{"GET", "/audit/verify", true, s.verifyAudit},

		{"GET", "/cluster", true, s.clusterAct(nil)},
		{"PUT", "/cluster/hsms/{k}", true, s.clusterHSM},
		{"GET", "/cluster/plan", true, s.clusterPlan},
		{"PUT", "/cluster/plan", true, s.clusterPlanLoad},
		{"DELETE", "/cluster/plan", true, s.clusterAct((*cluster.Cluster).ClearPlan)},
		{"POST", "/cluster/reset", true, s.clusterAct((*cluster.Cluster).Reset)},

		{"GET", "/metrics", true, s.getMetrics},
	} {
		s.routes = append(s.routes, Route{rt.method, v1 + rt.path})
		s.mux.Handle(rt.method+" "+v1+rt.path, s.api(rt.auth, rt.h))
	}
	s.mux.HandleFunc("/api/", s.noRoute)
	s.mux.Handle("/", s.ui())
}

// api wraps a handler: the session (401 without one, 403 on a bad CSRF
// token or origin), then the answer.
func (s *Server) api(auth bool, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{w: w, r: r}
		if auth {
			ws, err := s.authenticate(r)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			defer ws.mu.Unlock()
			c.ws = ws
		}
		status, body, err := h(c)
		if err != nil {
			if c.ws != nil && (errors.Is(err, ck.CKR_SESSION_HANDLE_INVALID) || errors.Is(err, ck.CKR_SESSION_CLOSED)) {
				// The token ended the PKCS#11 session under the web
				// session (its token was reset): so ends the web session.
				s.sessions.remove(c.ws)
				s.setCookie(w, r, nil)
				err = &apiError{status: http.StatusUnauthorized, code: codeSessionExpired, err: err,
					msg: "the token ended this session (" + message(err) + "): log in again"}
			}
			s.writeError(w, r, err)
			return
		}
		switch b := body.(type) {
		case nil:
			w.WriteHeader(status)
		case streamBody:
			lw := &lazyWriter{w: w, status: status, header: func(h http.Header) {
				h.Set("Content-Type", b.contentType)
				h.Set("Content-Disposition", `attachment; filename="`+b.filename+`"`)
			}}
			if err := b.write(lw); err != nil {
				if !lw.started {
					s.writeError(w, r, err)
					return
				}
				// Half a file is sent: cut the connection so that the
				// client sees a failed download, not a short one.
				s.log.Error("console: download failed", "path", r.URL.Path, "err", err)
				panic(http.ErrAbortHandler)
			}
			if !lw.started {
				lw.Write(nil)
			}
		case rawBody:
			w.Header().Set("Content-Type", b.contentType)
			if b.filename != "" {
				w.Header().Set("Content-Disposition", `attachment; filename="`+b.filename+`"`)
			}
			w.WriteHeader(status)
			w.Write(b.data)
		default:
			writeJSON(w, status, body)
		}
	})
}

// noRoute answers a path under /api/ that no route has: 405 when another
// method has it, else 404.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := s.mux.Handler(r2); pat != "" && pat != "/api/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, codeMethodNotAllowed, "%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
		return
	}
	s.writeError(w, r, errorf(http.StatusNotFound, codeNotFound, "no API route %s %s", r.Method, r.URL.Path))
}

// ui serves the embedded web UI (assets.go) to GET and HEAD.
func (s *Server) ui() http.Handler {
	files := http.FileServerFS(Assets())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if _, err := fs.Stat(Assets(), "index.html"); err != nil && r.URL.Path == "/" {
			http.Error(w, "the console's web UI is not built into this binary", http.StatusNotFound)
			return
		}
		files.ServeHTTP(w, r)
	})
}
