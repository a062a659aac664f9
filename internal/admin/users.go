package admin

import (
	"strings"

	"gohsm/internal/ck"
	"gohsm/token"
)

// Users are token.Module's: Users, CreateUser, DeleteUser and
// ChangePassword are the operations, their refusals the token's (mistake
// codes user_exists, no_such_user, bad_role, delete_self,
// user_owns_keys; quorum's). These two add what the CLI does around them.

// User is the user named name as `gohsm user list` shows it; no such user
// is the token's no_such_user mistake.
func User(m *token.Module, h ck.ULong, name string) (token.User, error) {
	users, err := m.Users(h)
	if err != nil {
		return token.User{}, err
	}
	name = strings.ToLower(name)
	for _, u := range users {
		if u.Name == name {
			return u, nil
		}
	}
	return token.User{}, token.NoSuchUser(name)
}

// CreateUser creates a user with a role word (crypto-officer, co, admin;
// crypto-user, cu: token.ParseRole) and returns it as user list shows it.
func CreateUser(m *token.Module, h ck.ULong, name, role string, password []byte) (token.User, error) {
	r, err := token.ParseRole(role)
	if err != nil {
		return token.User{}, err
	}
	if err := m.CreateUser(h, name, r, password); err != nil {
		return token.User{}, err
	}
	return User(m, h, name)
}
