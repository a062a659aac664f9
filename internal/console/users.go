package console

import (
	"net/http"
	"strings"

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
	role, err := token.ParseRole(req.Role)
	if err != nil {
		return 0, nil, badRequest("role %q: want crypto-user or crypto-officer", req.Role)
	}
	pw := []byte(req.Password)
	defer clear(pw)
	if err := c.ws.m.CreateUser(c.ws.h, req.Username, role, pw); err != nil {
		return 0, nil, err
	}
	name := strings.ToLower(req.Username)
	u := token.User{Name: name, Role: token.RoleString(role), HasPIN: true}
	if users, err := c.ws.m.Users(c.ws.h); err == nil {
		for _, x := range users {
			if x.Name == name {
				u = x
			}
		}
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
