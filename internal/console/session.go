package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"

	"gohsm/internal/ck"
	"gohsm/token"
)

const cookieName = "gohsm_session"

// webSession is one login: its own module and PKCS#11 session, logged in
// as the user. mu serialises the requests of the session (a PKCS#11
// session runs one operation at a time: a key list's find must not meet
// another's).
type webSession struct {
	id, csrf string
	username string
	role     string // "crypto-officer" or "crypto-user"
	slot     ck.ULong
	created  time.Time

	mu     sync.Mutex
	last   time.Time // the last request (idle expiry counts from it)
	m      *token.Module
	h      ck.ULong
	closed bool
}

// expiry is when ws expires: idle or absolute, whichever is first.
func (ws *webSession) expiry(idle, max time.Duration) time.Time {
	e := ws.last.Add(idle)
	if a := ws.created.Add(max); a.Before(e) {
		e = a
	}
	return e
}

// close logs out and closes the module (once).
func (ws *webSession) close() {
	if ws.closed {
		return
	}
	ws.closed = true
	ws.m.Logout(ws.h)
	ws.m.Close()
	ws.m = nil
}

// sessions is the table of web sessions. Expired ones stay as tombstones
// (module closed) until SessionMax after their expiry, so that their
// cookie answers session_expired rather than not_logged_in.
type sessions struct {
	s       *Server
	mu      sync.Mutex
	live    map[string]*webSession
	expired map[string]time.Time // id -> when it expired
	pending int                  // logins under way (they count toward MaxSessions)
}

func newSessions(s *Server) *sessions {
	return &sessions{s: s, live: map[string]*webSession{}, expired: map[string]time.Time{}}
}

// reserve claims a place for a login, or refuses with too_many_sessions.
func (t *sessions) reserve() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.live)+t.pending >= MaxSessions {
		return errorf(http.StatusTooManyRequests, codeTooManySessions,
			"%d web sessions are open: log one out or wait for one to expire", MaxSessions)
	}
	t.pending++
	return nil
}

func (t *sessions) release() {
	t.mu.Lock()
	t.pending--
	t.mu.Unlock()
}

// add turns a reservation into a live session.
func (t *sessions) add(ws *webSession) {
	t.mu.Lock()
	t.pending--
	t.live[ws.id] = ws
	t.mu.Unlock()
}

// lookup finds the session of id, live or expired. An expired live
// session is closed here (the sweeper may not have run yet).
func (t *sessions) lookup(id string, now time.Time) (*webSession, error) {
	t.mu.Lock()
	ws, ok := t.live[id]
	_, dead := t.expired[id]
	t.mu.Unlock()
	switch {
	case dead:
		return nil, errorf(http.StatusUnauthorized, codeSessionExpired, "the session has expired: log in again")
	case !ok:
		return nil, errorf(http.StatusUnauthorized, codeNotLoggedIn, "not logged in")
	}
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		return nil, errorf(http.StatusUnauthorized, codeNotLoggedIn, "not logged in")
	}
	if !now.Before(ws.expiry(t.s.opts.SessionIdle, t.s.opts.SessionMax)) {
		ws.mu.Unlock()
		t.expire(ws, now)
		return nil, errorf(http.StatusUnauthorized, codeSessionExpired, "the session has expired: log in again")
	}
	ws.mu.Unlock()
	return ws, nil
}

// expire ends ws as expired.
func (t *sessions) expire(ws *webSession, now time.Time) {
	t.mu.Lock()
	if t.live[ws.id] == ws {
		delete(t.live, ws.id)
		t.expired[ws.id] = now
	}
	t.mu.Unlock()
	ws.mu.Lock()
	ws.close()
	ws.mu.Unlock()
}

// remove ends ws by a logout.
func (t *sessions) remove(ws *webSession) {
	t.mu.Lock()
	if t.live[ws.id] == ws {
		delete(t.live, ws.id)
	}
	t.mu.Unlock()
	ws.close() // the caller holds ws.mu
}

// sweepOnce closes the sessions expired at now and forgets old tombstones.
func (t *sessions) sweepOnce(now time.Time) {
	t.mu.Lock()
	var due []*webSession
	for _, ws := range t.live {
		if ws.mu.TryLock() {
			// A session busy with a request is checked at its next one.
			if !now.Before(ws.expiry(t.s.opts.SessionIdle, t.s.opts.SessionMax)) {
				due = append(due, ws)
			}
			ws.mu.Unlock()
		}
	}
	for id, at := range t.expired {
		if now.Sub(at) > t.s.opts.SessionMax {
			delete(t.expired, id)
		}
	}
	t.mu.Unlock()
	for _, ws := range due {
		t.expire(ws, now)
	}
}

func (t *sessions) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.live)
}

func (t *sessions) closeAll() {
	t.mu.Lock()
	all := t.live
	t.live = map[string]*webSession{}
	t.mu.Unlock()
	for _, ws := range all {
		ws.mu.Lock()
		ws.close()
		ws.mu.Unlock()
	}
}

// slots are the slots that have live sessions (the metrics sampler
// watches them).
func (t *sessions) slots() map[ck.ULong]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[ck.ULong]bool{}
	for _, ws := range t.live {
		out[ws.slot] = true
	}
	return out
}

// sweep runs until Close: expired sessions are closed within a quarter
// second of their expiry.
func (s *Server) sweep() {
	defer s.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	sample := time.NewTicker(sampleInterval)
	defer sample.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-sample.C:
			s.watch()
		case <-tick.C:
			s.sessions.sweepOnce(s.now())

		}
	}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authenticate finds the request's session and, for a request that
// changes something, checks its origin and CSRF token. It returns the
// session locked (the caller unlocks it) and marks it used, unless the
// request is a page's background poll (header X-Gohsm-Poll: 1): a poll is
// served but does not renew the idle deadline, so that an open metrics or
// cluster page does not keep an unattended session alive.
func (s *Server) authenticate(r *http.Request) (*webSession, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil, errorf(http.StatusUnauthorized, codeNotLoggedIn, "not logged in")
	}
	now := s.now()
	ws, err := s.sessions.lookup(c.Value, now)
	if err != nil {
		return nil, err
	}
	if changes(r) {
		if err := s.checkOrigin(r); err != nil {
			return nil, err
		}
		got := r.Header.Get("X-CSRF-Token")
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(ws.csrf)) != 1 {
			return nil, errorf(http.StatusForbidden, codeCSRF, "missing or wrong X-CSRF-Token header (login and GET /api/v1/session give the token)")
		}
	}
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		return nil, errorf(http.StatusUnauthorized, codeSessionExpired, "the session has ended: log in again")
	}
	if !isPoll(r) {
		ws.last = now
	}
	return ws, nil
}

// pollHeader marks a background poll (F4): served, but not activity.
const pollHeader = "X-Gohsm-Poll"

// isPoll: a GET sent by a page's timer, not by its user. Only a GET may
// be one: a change is always the user's activity.
func isPoll(r *http.Request) bool {
	return r.Method == http.MethodGet && r.Header.Get(pollHeader) == "1"
}

// changes: the methods that change state, which need the CSRF token.
func changes(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// checkOrigin refuses a request whose Origin header is not the server's
// own origin (a page elsewhere posting to the console).
func (s *Server) checkOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !strings.EqualFold(o, scheme+"://"+r.Host) {
		return errorf(http.StatusForbidden, codeCSRF, "request from another origin (%s) refused", o)
	}
	return nil
}

// setCookie sets (or, with ws nil, clears) the session cookie.
func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, ws *webSession) {
	c := &http.Cookie{Name: cookieName, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || s.tls != nil}
	if ws == nil {
		c.MaxAge = -1
	} else {
		c.Value = ws.id
	}
	http.SetCookie(w, c)
}
