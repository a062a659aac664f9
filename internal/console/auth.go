package console

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"gohsm/internal/admin"
	"gohsm/internal/ck"
	"gohsm/token"
)

// slotRow is a row of GET /slots: what a login page needs to offer.
type slotRow struct {
	Slot        ck.ULong `json:"slot"`
	Label       string   `json:"label"`
	Initialized bool     `json:"initialized"`
	Profile     string   `json:"profile"`
	Default     bool     `json:"default"`
}

func (s *Server) getSlots(c *call) (int, any, error) {
	s.toolMu.Lock()
	defer s.toolMu.Unlock()
	rows := []slotRow{}
	for _, id := range s.tool.SlotIDs() {
		sl, err := s.tool.Slot(id)
		if err != nil {
			return 0, nil, err
		}
		r := slotRow{Slot: id, Label: sl.Config().Label, Profile: sl.Profile().Name, Default: id == s.slot}
		if ti, err := sl.TokenInfo(); err == nil {
			r.Label, r.Initialized = strings.TrimRight(ti.Label, " "), ti.Initialized
		}
		rows = append(rows, r)
	}
	return http.StatusOK, rows, nil
}

type loginRequest struct {
	Slot     *uint  `json:"slot"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// sessionInfo is the body of login and GET /session.
type sessionInfo struct {
	Username    string    `json:"username"`
	Role        string    `json:"role"`
	Slot        ck.ULong  `json:"slot"`
	CSRFToken   string    `json:"csrf_token"`
	ExpiresAt   time.Time `json:"expires_at"`
	IdleTimeout int64     `json:"idle_timeout_s"`
}

func (s *Server) info(ws *webSession) sessionInfo {
	return sessionInfo{Username: ws.username, Role: ws.role, Slot: ws.slot, CSRFToken: ws.csrf,
		ExpiresAt: ws.expiry(s.opts.SessionIdle, s.opts.SessionMax).UTC(), IdleTimeout: int64(s.opts.SessionIdle / time.Second)}
}

// login opens a module and a R/W session on the slot and logs in with
// the module's C_Login: the password is checked (and a wrong one counted
// toward lockout) by the token, never here.
func (s *Server) login(c *call) (int, any, error) {
	if err := s.checkOrigin(c.r); err != nil {
		return 0, nil, err
	}
	var req loginRequest
	if err := decodeJSON(c.r, maxBody, &req); err != nil {
		return 0, nil, err
	}
	if req.Username == "" || req.Password == "" {
		return 0, nil, badRequest("username and password are required")
	}
	if strings.Contains(req.Username, ":") {
		return 0, nil, badRequest("username: no ':' in a user name")
	}
	slot := s.slot
	if req.Slot != nil {
		slot = ck.ULong(*req.Slot)
	}
	if err := s.sessions.reserve(); err != nil {
		return 0, nil, err
	}
	ws, err := s.open(slot, strings.ToLower(req.Username), req.Password)
	if err != nil {
		s.sessions.release()
		if errors.Is(err, ck.CKR_PIN_INCORRECT) {
			// The token's words tell an unknown user from a wrong
			// password ("no such crypto officer"): fine for a local
			// CLI, an oracle for names on the network.
			return 0, nil, &apiError{status: http.StatusUnauthorized, code: ck.CKR_PIN_INCORRECT.String(),
				err: ck.CKR_PIN_INCORRECT, msg: "login: wrong user name or password"}
		}
		return 0, nil, err
	}
	if old, err := c.r.Cookie(cookieName); err == nil {
		// The browser drops the old cookie for the new one: end its
		// session rather than leave its module open until it expires.
		if prev, err := s.sessions.lookup(old.Value, s.now()); err == nil {
			prev.mu.Lock()
			s.sessions.remove(prev)
			prev.mu.Unlock()
		}
	}
	s.sessions.add(ws)
	s.setCookie(c.w, c.r, ws)
	return http.StatusCreated, s.info(ws), nil
}

// open is a login: its own module (as the CLI opens one), a R/W session,
// C_Login as CKU_SO for a crypto officer and CKU_USER for a crypto user
// (admin.Login: the CLI's rule, the role of the user the name names).
func (s *Server) open(slot ck.ULong, name, password string) (ws *webSession, err error) {
	m, err := token.OpenTool(s.opts.Config)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	sl, err := m.Slot(slot)
	if err != nil {
		return nil, err
	}
	h, err := m.OpenSession(slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		if errors.Is(err, ck.CKR_TOKEN_NOT_RECOGNIZED) {
			if ti, terr := sl.TokenInfo(); terr == nil && !ti.Initialized {
				return nil, &apiError{status: http.StatusConflict, code: codeNotInitialized, err: err,
					msg: "slot has no token yet: make one with 'gohsm token init --label LABEL'"}
			}
		}
		return nil, err
	}
	pin := []byte(name + ":" + password)
	defer clear(pin)
	ut, err := admin.Login(m, h, pin, admin.NeedAny)
	if err != nil {
		return nil, err
	}
	role := admin.RoleCO
	if ut == ck.CKU_USER {
		role = admin.RoleCU
	}
	now := s.now()
	return &webSession{id: randomToken(), csrf: randomToken(), username: name, role: role, slot: slot,
		created: now, last: now, m: m, h: h}, nil
}

func (s *Server) getSession(c *call) (int, any, error) {
	return http.StatusOK, s.info(c.ws), nil
}

func (s *Server) logout(c *call) (int, any, error) {
	s.sessions.remove(c.ws)
	s.setCookie(c.w, c.r, nil)
	return http.StatusNoContent, nil, nil
}
