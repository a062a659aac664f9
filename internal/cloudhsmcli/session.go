package cloudhsmcli

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"gohsm/internal/ck"
)

// login and logout (UG:cloudhsm_cli-login, UG:cloudhsm_cli-logout). A
// login is kept for the following commands of an interactive session;
// in single-command mode CLOUDHSM_ROLE/CLOUDHSM_PIN log in instead.
func init() {
	register(
		Command{Path: []string{"login"}, Help: "Login to your cluster", Role: Anyone, Setup: loginCmd},
		Command{Path: []string{"logout"}, Help: "Logout of your cluster", Role: LoggedIn, Setup: logoutCmd},
	)
}

// userRole is the data of login, user create|delete|change-password.
type userRole struct {
	Username string `json:"username"`
	Role     string `json:"role"`
}

// parseRoleFlag checks a --role value: CloudHSM CLI's two roles.
func parseRoleFlag(r string) (string, error) {
	switch r {
	case "admin", "crypto-user":
		return r, nil
	}
	return "", usageErr{fmt.Sprintf("invalid value '%s' for '--role <ROLE>'\n  [possible values: crypto-user, admin]", r)}
}

func loginCmd(fs *flag.FlagSet) func(*Context) (any, error) {
	user := fs.String("username", "", "Username to access the Cluster")
	role := fs.String("role", "", "Role the user has in the Cluster [possible values: crypto-user, admin]")
	password := fs.String("password", "", "Optional: Plaintext user's password. If you do not include this argument you will be prompted for it")
	return func(c *Context) (any, error) {
		if err := required(fs, "username", "role"); err != nil {
			return nil, err
		}
		r, err := parseRoleFlag(*role)
		if err != nil {
			return nil, err
		}
		if c.user != "" {
			return nil, fmt.Errorf("user %s is already logged in: log out first", c.user)
		}
		pw := []byte(*password)
		if *password == "" {
			if pw, err = c.readPassword("Enter password:"); err != nil {
				return nil, err
			}
		}
		name := strings.ToLower(*user)
		c.user, c.role, c.pin = name, r, append([]byte(name+":"), pw...)
		clear(pw)
		if _, err := c.Session(); err != nil {
			c.forget()
			return nil, err
		}
		return userRole{name, r}, nil
	}
}

func logoutCmd(fs *flag.FlagSet) func(*Context) (any, error) {
	return func(c *Context) (any, error) {
		if c.loggedIn {
			if err := c.m.Logout(c.h); err != nil && !errors.Is(err, ck.CKR_USER_NOT_LOGGED_IN) {
				return nil, err
			}
		}
		c.forget()
		return "Logout successful", nil
	}
}

// forget drops the login's name and password.
func (c *Context) forget() {
	clear(c.pin)
	c.user, c.role, c.pin, c.loggedIn = "", "", nil, false
}
