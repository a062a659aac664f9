package console

import (
	"net/http"

	"gohsm/internal/admin"
	"gohsm/token"
)

// The users endpoints: the token's Module methods, so that roles, quorum
// and the lockout rules are the token's.

func (s *Server) listUsers(c *call) (int, any, error) {
	users, err := c.ws.m.Users(c.ws.h)
	if err != nil {
		return 0, nil, err
	}
	if users == nil {
		users = []token.User{}
	}
	return http.StatusOK, map[string]any{"users": users}, nil
}

type createUserRequest struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

func (s *Server) createUser(c *call) (int, any, error) {
	var req createUserRequest
	if err := decodeJSON(c.r, maxBody, &req); err != nil {
		return 0, nil, err
	}
	if req.Username == "" || req.Role == "" || req.Password == "" {
		return 0, nil, badRequest("username, role and password are required")
	}
	pw := []byte(req.Password)
	defer clear(pw)
	// admin.CreateUser is `gohsm user create`: the role word's rule and
	// the user as user list shows it are the CLI's.
	u, err := admin.CreateUser(c.ws.m, c.ws.h, req.Username, req.Role, pw)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"user": u}, nil
}

func (s *Server) deleteUser(c *call) (int, any, error) {
	if err := c.ws.m.DeleteUser(c.ws.h, c.r.PathValue("username")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

type passwordRequest struct {
	Password string `json:"password"`
}

func (s *Server) setPassword(c *call) (int, any, error) {
	var req passwordRequest
	if err := decodeJSON(c.r, maxBody, &req); err != nil {
		return 0, nil, err
	}
	if req.Password == "" {
		return 0, nil, badRequest("password is required")
	}
	pw := []byte(req.Password)
	defer clear(pw)
	if err := c.ws.m.ChangePassword(c.ws.h, c.r.PathValue("username"), pw); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
