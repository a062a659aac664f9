package admin

import (
	"fmt"
	"strings"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/store"
)

// Need is the login an operation requires: the CLI's commands declare one,
// and it decides which user type a PIN logs in as.
type Need int

const (
	NeedNone Need = iota // no login
	NeedCO               // crypto officer
	NeedCU               // crypto user
	NeedAny              // crypto officer, or a crypto user acting on itself
)

// Role names, as token.User.Role gives them.
var (
	RoleCO = token.RoleString(store.RoleCO)
	RoleCU = token.RoleString(store.RoleCU)
)

// UserType picks CKU_SO or CKU_USER for a PIN ("name:password", or a bare
// password for the role's default user): the role want names, or for
// NeedAny the role of the user the PIN names. A PIN naming a user of the
// wrong role fails before any password is tried
// (CKR_USER_NOT_LOGGED_IN). An unknown name logs in as CKU_SO, which the
// token then refuses as any wrong name.
func UserType(m *token.Module, h ck.ULong, pin []byte, want Need) (ck.UserType, error) {
	name, _, named := strings.Cut(string(pin), ":")
	if !named {
		name = token.DefaultCO
		if want == NeedCU {
			name = token.DefaultCU
		}
	}
	name = strings.ToLower(name)
	users, err := m.Users(h)
	if err != nil {
		return 0, err
	}
	role := ""
	for _, u := range users {
		if u.Name == name {
			role = u.Role
		}
	}
	switch {
	case want == NeedCO && role == RoleCU:
		return 0, fmt.Errorf("%q is a crypto user: %w", name, ck.CKR_USER_NOT_LOGGED_IN)
	case want == NeedCU && role == RoleCO:
		return 0, fmt.Errorf("%q is a crypto officer: %w", name, ck.CKR_USER_NOT_LOGGED_IN)
	case want == NeedCU, want == NeedAny && role == RoleCU:
		return ck.CKU_USER, nil
	}
	return ck.CKU_SO, nil
}

// Login logs session h in with pin as want requires (UserType); a bare
// password is said as the role's default user's ("admin:", "user:"),
// since the cloudhsm profile takes only "name:password" PINs. It returns
// the user type used.
func Login(m *token.Module, h ck.ULong, pin []byte, want Need) (ck.UserType, error) {
	ut, err := UserType(m, h, pin, want)
	if err != nil {
		return 0, err
	}
	if !strings.Contains(string(pin), ":") {
		def := token.DefaultCO
		if ut == ck.CKU_USER {
			def = token.DefaultCU
		}
		pin = append([]byte(def+":"), pin...)
	}
	if err := m.Login(h, ut, pin); err != nil {
		return 0, err
	}
	return ut, nil
}
