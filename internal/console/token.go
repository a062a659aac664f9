package console

import (
	"fmt"
	"net/http"
	"strconv"

	"gohsm/internal/admin"
)

// The token and audit endpoints: internal/admin's status, backup, audit
// query and verification, as the CLI's token list, token backup, audit
// show and audit verify run them.

// tokenStatus is GET /token: the token list row and the slot's profile.
type tokenStatus struct {
	admin.TokenStatus
	Profile string `json:"profile"`
}

func (s *Server) getToken(c *call) (int, any, error) {
	st, err := admin.Status(c.ws.m, c.ws.slot)
	if err != nil {
		return 0, nil, err
	}
	sl, err := c.ws.m.Slot(c.ws.slot)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, tokenStatus{st, sl.Profile().Name}, nil
}

// backup streams the backup file; the token refuses a session that is not
// an officer's before anything is written, so that refusal is a JSON error.
func (s *Server) backup(c *call) (int, any, error) {
	name := fmt.Sprintf("gohsm-slot%d-%s.gohsm-backup", c.ws.slot, s.now().UTC().Format("20060102-150405"))
	return http.StatusOK, streamBody{contentType: "application/octet-stream", filename: name,
		write: func(w *lazyWriter) error {
			_, err := admin.Backup(c.ws.m, c.ws.h, w)
			return err
		}}, nil
}

func (s *Server) getAudit(c *call) (int, any, error) {
	v := c.r.URL.Query()
	q := admin.AuditQuery{Stream: v.Get("stream"), Opcode: v.Get("opcode"), User: v.Get("user")}
	if x := v.Get("since"); x != "" {
		n, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return 0, nil, badRequest("since %q: want a sequence number", x)
		}
		q.Since = n
	}
	if x := v.Get("limit"); x != "" {
		n, err := strconv.Atoi(x)
		if err != nil || n < 1 {
			return 0, nil, badRequest("limit %q: want a number of records, 1 or more", x)
		}
		q.Limit = n
	}
	if err := q.Check(); err != nil {
		return 0, nil, err
	}
	sl, err := c.ws.m.Slot(c.ws.slot)
	if err != nil {
		return 0, nil, err
	}
	recs, _, err := admin.QueryAudit(sl, q)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"records": admin.Lines(recs)}, nil
}

func (s *Server) verifyAudit(c *call) (int, any, error) {
	sl, err := c.ws.m.Slot(c.ws.slot)
	if err != nil {
		return 0, nil, err
	}
	v, err := admin.VerifyAudit(sl, admin.VerifyOptions{Stream: c.r.URL.Query().Get("stream")})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, v, nil
}
