package cloudhsmcli

import (
	"flag"
	"fmt"
	"slices"
	"strings"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/store"
)

// user list|create|delete|change-password (UG-2023:cloudhsm_cli-user-*.md).
// The rules (who may create, delete, change whose password; lockout) are
// the token's: these commands only check their flags and say who asks.
func init() {
	register(
		Command{Path: []string{"user", "list"}, Help: "List the users in your cluster", Role: Anyone, Setup: userList},
		Command{Path: []string{"user", "create"}, Help: "Create a new user", Role: Admin, Setup: userCreate},
		Command{Path: []string{"user", "delete"}, Help: "Delete a user", Role: Admin, Setup: userDelete},
		Command{Path: []string{"user", "change-password"}, Help: "Change a user's password", Role: LoggedIn, Setup: userChangePassword},
	)
}

// listedUser is a row of user list (UG-2023:cloudhsm_cli-user-list.md;
// the members and their order as in the current guide's example, with
// quorum, on https://docs.aws.amazon.com/cloudhsm/latest/userguide/troubleshoot-sdk5-user-replicate-failures.html):
// locked is the string "true" or "false", as there. quorum lists the
// user's registered quorum keys (user change-quorum token-sign register).
type listedUser struct {
	Username        string     `json:"username"`
	Role            string     `json:"role"`
	Locked          string     `json:"locked"`
	MFA             []strategy `json:"mfa"`
	Quorum          []strategy `json:"quorum"`
	ClusterCoverage string     `json:"cluster-coverage"`
}

// strategy is an entry of mfa or quorum: {"strategy":"token-sign","status":"enabled"}.
type strategy struct {
	Strategy string `json:"strategy"`
	Status   string `json:"status"`
}

// cliRole names a token role as CloudHSM CLI does.
func cliRole(r store.Role) string {
	if r == store.RoleCO {
		return "admin"
	}
	return "crypto-user"
}

// storeRole is the token role of a --role value.
func storeRole(r string) store.Role {
	if r == "admin" {
		return store.RoleCO
	}
	return store.RoleCU
}

func userList(fs *flag.FlagSet) func(*Context) (any, error) {
	return func(c *Context) (any, error) {
		_, s, err := c.Module()
		if err != nil {
			return nil, err
		}
		ti, err := s.TokenInfo()
		if err != nil {
			return nil, err
		}
		users := []listedUser{}
		if !ti.Initialized {
			users = append(users, listedUser{Username: token.DefaultCO, Role: unactivatedAdmin, Locked: "false",
				MFA: []strategy{}, Quorum: []strategy{}, ClusterCoverage: "full"})
			return map[string]any{"users": users}, nil
		}
		h, err := c.Session()
		if err != nil {
			return nil, err
		}
		us, err := c.m.Users(h)
		if err != nil {
			return nil, err
		}
		registered, err := c.m.QuorumRegistered(h) // quorum.go
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			r, _ := token.ParseRole(u.Role)
			q := []strategy{}
			if slices.Contains(registered, u.Name) {
				q = append(q, strategy{Strategy: "token-sign", Status: "enabled"})
			}
			users = append(users, listedUser{Username: u.Name, Role: cliRole(r), Locked: fmt.Sprint(u.Locked),
				MFA: []strategy{}, Quorum: q, ClusterCoverage: "full"})
		}
		return map[string]any{"users": users}, nil
	}
}

// userFlags are the --username and --role every user command takes.
type userFlags struct {
	fs         *flag.FlagSet
	name, role *string
}

func addUserFlags(fs *flag.FlagSet, nameHelp string) userFlags {
	return userFlags{fs,
		fs.String("username", "", nameHelp),
		fs.String("role", "", "Role the user has in the cluster [possible values: crypto-user, admin]")}
}

// parse checks the flags: both given, a known role; the name in lowercase.
func (u userFlags) parse() (userRole, error) {
	if err := required(u.fs, "username", "role"); err != nil {
		return userRole{}, err
	}
	r, err := parseRoleFlag(*u.role)
	if err != nil {
		return userRole{}, err
	}
	return userRole{strings.ToLower(*u.name), r}, nil
}

// target checks the user flags and opens the logged-in session; with
// exists, the user must exist with the role given (delete,
// change-password), as existing checks.
func (c *Context) target(uf userFlags, exists bool) (userRole, ck.ULong, error) {
	u, err := uf.parse()
	if err != nil {
		return userRole{}, 0, err
	}
	h, err := c.Session()
	if err != nil {
		return userRole{}, 0, err
	}
	if exists {
		if err := c.existing(h, u); err != nil {
			return userRole{}, 0, err
		}
	}
	return u, h, nil
}

// existing checks that the user exists with the role given: --role names
// the user (CloudHSM keys users by name and role).
func (c *Context) existing(h ck.ULong, u userRole) error {
	us, err := c.m.Users(h)
	if err != nil {
		return err
	}
	for _, x := range us {
		if x.Name != u.Username {
			continue
		}
		if r, _ := token.ParseRole(x.Role); cliRole(r) != u.Role {
			return fmt.Errorf("user %s is a%s %s, not a%s %s", u.Username, article(cliRole(r)), cliRole(r), article(u.Role), u.Role)
		}
		return nil
	}
	return fmt.Errorf("user %s (%s) does not exist", u.Username, u.Role)
}

func article(role string) string {
	if role == "admin" {
		return "n"
	}
	return ""
}

func userCreate(fs *flag.FlagSet) func(*Context) (any, error) {
	return userWithPassword(fs, "Username to access the HSM cluster", false, func(c *Context, h ck.ULong, u userRole, pw []byte) error {
		return c.m.CreateUser(h, u.Username, storeRole(u.Role), pw)
	})
}

// userWithPassword is a user command that sets a password (create,
// change-password): --username and --role (with exists, of an existing
// user), --password (else asked for) and --approval, then set.
func userWithPassword(fs *flag.FlagSet, nameHelp string, exists bool, set func(c *Context, h ck.ULong, u userRole, pw []byte) error) func(*Context) (any, error) {
	uf := addUserFlags(fs, nameHelp)
	password := fs.String("password", "", "Optional: Plaintext user's password. If you do not include this argument you will be prompted for it")
	approval := addApprovalFlag(fs) // the user service's quorum (quorum.go)
	return func(c *Context) (any, error) {
		u, h, err := c.target(uf, exists)
		if err != nil {
			return nil, err
		}
		pw, err := c.newPassword(*password)
		if err != nil {
			return nil, err
		}
		defer clear(pw)
		if err := c.approval(*approval); err != nil {
			return nil, err
		}
		if err := set(c, h, u, pw); err != nil {
			return nil, err
		}
		return u, nil
	}
}

func userDelete(fs *flag.FlagSet) func(*Context) (any, error) {
	uf := addUserFlags(fs, "Username to access the HSM cluster")
	approval := addApprovalFlag(fs) // the user service's quorum (quorum.go)
	return func(c *Context) (any, error) {
		u, h, err := c.target(uf, true)
		if err != nil {
			return nil, err
		}
		if err := c.approval(*approval); err != nil {
			return nil, err
		}
		if err := c.m.DeleteUser(h, u.Username); err != nil {
			return nil, err
		}
		return u, nil
	}
}

// user change-password: "Any user can change their own password ... users
// with the admin role can change the password of another user"; "You
// cannot change the password of a user who is currently logged in"
// (UG-2023:cloudhsm_cli-user-change-password.md). The token decides both.
func userChangePassword(fs *flag.FlagSet) func(*Context) (any, error) {
	return userWithPassword(fs, "Username of the user that will be modified", true, func(c *Context, h ck.ULong, u userRole, pw []byte) error {
		if err := c.m.ChangePassword(h, u.Username, pw); err != nil {
			return err
		}
		if u.Username == c.user {
			// Our own: a later login (after logout) needs the new one.
			clear(c.pin)
			c.pin = append([]byte(c.user+":"), pw...)
		}
		return nil
	})
}
