package cloudhsmcli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"gohsm/internal/ck"
	"gohsm/token/quorum"
)

// CloudHSM CLI's quorum commands (docs/quorum.md): quorum token-sign
// generate|list|list-quorum-values|set-quorum-value|delete, and user
// change-quorum token-sign register. Shapes and texts from the AWS
// CloudHSM User Guide pages cloudhsm_cli-qm-token-*.html,
// cloudhsm_cli-user-chqm-token-reg.html, quorum-auth-chsm-cli-admin.html
// and quorum-auth-chsm-cli-first-time.html.
//
// Commands a quorum gates take --approval FILE (addApprovalFlag); their
// run function calls c.approval(path) before the operation, which hands
// the signed token to the token: the operation then uses it up.

func init() {
	register(
		Command{Path: []string{"quorum", "token-sign", "generate"}, Help: "Generate a token", Role: LoggedIn, Setup: setupQuorumGenerate},
		Command{Path: []string{"quorum", "token-sign", "list"}, Help: "List the token-sign tokens in your cluster", Role: LoggedIn, Setup: setupQuorumList},
		Command{Path: []string{"quorum", "token-sign", "list-quorum-values"}, Help: "List current quorum values", Role: Anyone, Setup: setupQuorumValues},
		Command{Path: []string{"quorum", "token-sign", "set-quorum-value"}, Help: "Set a quorum value", Role: Admin, Setup: setupQuorumSet},
		Command{Path: []string{"quorum", "token-sign", "delete"}, Help: "Delete one or more Quorum Tokens", Role: Admin, Setup: setupQuorumDelete},
		// CloudHSM's page says admin; crypto users approve key-service
		// tokens, so they register keys too.
		Command{Path: []string{"user", "change-quorum", "token-sign", "register"}, Help: "Register a user for quorum authentication with a public key", Role: LoggedIn, Setup: setupQuorumRegister},
	)
}

// addApprovalFlag defines --approval on a gated command.
func addApprovalFlag(fs *flag.FlagSet) *string {
	return addApprovalFlagNamed(fs, "approval")
}

// addApprovalFlagNamed defines an approval flag of another name (key wrap:
// --wrapping-approval, --payload-approval).
func addApprovalFlagNamed(fs *flag.FlagSet, name string) *string {
	return fs.String(name, "", "Filepath of signed quorum token file to approve operation")
}

// approval hands a signed quorum token file to the token for the logged-in
// session ("" does nothing): the next operation of its service uses it.
func (c *Context) approval(path string) error {
	if path == "" {
		return nil
	}
	b, err := quorum.ReadFile(path)
	if err != nil {
		return fmt.Errorf("failed to read approval file %s: %w", path, err)
	}
	h, err := c.Session()
	if err != nil {
		return err
	}
	return c.m.ApproveQuorumToken(h, b)
}

// keyQuorumFlags are a key-making command's --manage-key-quorum-value and
// --use-key-quorum-value (UG:cloudhsm_cli-key-generate-symmetric-aes).
type keyQuorumFlags struct{ manage, use *int }

func addKeyQuorumFlags(fs *flag.FlagSet) keyQuorumFlags {
	return keyQuorumFlags{
		manage: fs.Int("manage-key-quorum-value", 0, "The quorum value for key management operations"),
		use:    fs.Int("use-key-quorum-value", 0, "The quorum value for key usage operations"),
	}
}

// setKeyQuorum sets a new key's quorum values, after it was shared (a
// value may not exceed owner plus shared users); refused, the key is
// destroyed again, so that a refused command leaves nothing behind.
func (c *Context) setKeyQuorum(obj ck.ULong, f keyQuorumFlags, also ...ck.ULong) error {
	if *f.manage == 0 && *f.use == 0 {
		return nil
	}
	h, err := c.Session()
	if err != nil {
		return err
	}
	if err := c.m.SetKeyQuorumValues(h, obj, *f.use, *f.manage); err != nil {
		for _, o := range append([]ck.ULong{obj}, also...) {
			if derr := c.m.DestroyObject(h, o); derr != nil {
				return fmt.Errorf("%w (and the new key %s could not be removed: %v)", err, KeyReference(o), derr)
			}
		}
		return err
	}
	return nil
}

// quorumText is the CloudHSM CLI text of a quorum refusal, without the
// layers' prefixes ("Quorum approval is required for this operation").
func quorumText(err error) (string, bool) {
	var q *quorum.Error
	if errors.As(err, &q) {
		return q.Text, true
	}
	return "", false
}

func setupQuorumGenerate(fs *flag.FlagSet) func(*Context) (any, error) {
	service := fs.String("service", "", "Service the token will be used for: user, quorum, cluster (hsm2m), key-management, key-usage, registration")
	path := fs.String("token", "", "Filepath where the unsigned token file will be written")
	return func(c *Context) (any, error) {
		if err := required(fs, "service", "token"); err != nil {
			return nil, err
		}
		h, err := c.Session()
		if err != nil {
			return nil, err
		}
		svc, err := c.slot.ParseQuorumService(*service)
		if err != nil {
			return nil, err
		}
		approval, err := c.m.GenerateQuorumToken(h, svc)
		if err != nil {
			return nil, err
		}
		var doc any = quorum.NewTokenFile(approval)
		if svc == quorum.Registration {
			doc = quorum.NewRegistrationFile(approval)
		}
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(*path, append(b, '\n'), 0o600); err != nil {
			return nil, fmt.Errorf("failed to write token file %s: %w", *path, errors.Unwrap(err))
		}
		// "path" as quorum-auth-chsm-cli-admin and -first-time show it
		// (the generate page's own example says "filepath").
		return map[string]string{"path": *path}, nil
	}
}

// quorumCount is CloudHSM CLI's {"value": N} in token list output.
type quorumCount struct {
	Value int `json:"value"`
}

type quorumTokenJSON struct {
	Username  string      `json:"username"`
	Service   string      `json:"service"`
	Required  quorumCount `json:"approvals-required"`
	Approvals quorumCount `json:"number-of-approvals"`
	Timeout   quorumCount `json:"token-timeout-seconds"`
	Coverage  string      `json:"cluster-coverage"`
}

func setupQuorumList(fs *flag.FlagSet) func(*Context) (any, error) {
	return func(c *Context) (any, error) {
		h, err := c.Session()
		if err != nil {
			return nil, err
		}
		ts, err := c.m.QuorumTokens(h)
		if err != nil {
			return nil, err
		}
		out := []quorumTokenJSON{}
		for _, t := range ts {
			out = append(out, quorumTokenJSON{Username: t.User, Service: string(t.Service), Required: quorumCount{t.Required},
				Approvals: quorumCount{t.Approvals}, Timeout: quorumCount{t.Timeout}, Coverage: "full"})
		}
		return map[string]any{"tokens": out}, nil
	}
}

// quorumValuesJSON keeps CloudHSM CLI's order: user, quorum, cluster.
type quorumValuesJSON struct {
	User    int  `json:"user"`
	Quorum  int  `json:"quorum"`
	Cluster *int `json:"cluster,omitempty"`
}

func setupQuorumValues(fs *flag.FlagSet) func(*Context) (any, error) {
	return func(c *Context) (any, error) {
		h, err := c.Session()
		if err != nil {
			return nil, err
		}
		vs, err := c.m.QuorumValues(h)
		if err != nil {
			return nil, err
		}
		out := quorumValuesJSON{User: vs[quorum.User], Quorum: vs[quorum.Quorum]}
		if v, ok := vs[quorum.Cluster]; ok {
			out.Cluster = &v
		}
		return out, nil
	}
}

func setupQuorumSet(fs *flag.FlagSet) func(*Context) (any, error) {
	service := fs.String("service", "", "Service the token will be used for: user, quorum, cluster (hsm2m)")
	value := fs.Int("value", 0, "Value to set for service")
	approval := addApprovalFlag(fs)
	return func(c *Context) (any, error) {
		if err := required(fs, "service", "value"); err != nil {
			return nil, err
		}
		if _, err := c.Session(); err != nil {
			return nil, err
		}
		svc, err := c.slot.ParseQuorumService(*service)
		if err != nil {
			return nil, err
		}
		if err := c.approval(*approval); err != nil {
			return nil, err
		}
		warning, err := c.m.SetQuorumValue(c.h, svc, *value)
		if err != nil {
			return nil, err
		}
		if warning != "" {
			fmt.Fprintf(c.stderr, "warning: %s\n", warning)
		}
		return "Set Quorum Value successful", nil
	}
}

func setupQuorumDelete(fs *flag.FlagSet) func(*Context) (any, error) {
	scope := fs.String("scope", "", "Scope of which token(s) will be deleted: user (the logged-in user's), all")
	return func(c *Context) (any, error) {
		if err := required(fs, "scope"); err != nil {
			return nil, err
		}
		if *scope != "user" && *scope != "all" {
			return nil, usageErr{fmt.Sprintf("invalid value '%s' for '--scope <SCOPE>'", *scope)}
		}
		h, err := c.Session()
		if err != nil {
			return nil, err
		}
		if _, err := c.m.DeleteQuorumTokens(h, *scope == "all"); err != nil {
			return nil, err
		}
		return "Deletion of quorum token(s) successful", nil
	}
}

func setupQuorumRegister(fs *flag.FlagSet) func(*Context) (any, error) {
	pub := fs.String("public-key", "", "Filepath to public key PEM file")
	signed := fs.String("signed-token", "", "Filepath with token signed by user private key")
	return func(c *Context) (any, error) {
		if err := required(fs, "public-key", "signed-token"); err != nil {
			return nil, err
		}
		p, err := quorum.ReadFile(*pub)
		if err != nil {
			return nil, fmt.Errorf("failed to read public key file %s: %w", *pub, err)
		}
		s, err := quorum.ReadFile(*signed)
		if err != nil {
			return nil, fmt.Errorf("failed to read signed token file %s: %w", *signed, err)
		}
		h, err := c.Session()
		if err != nil {
			return nil, err
		}
		if err := c.m.RegisterQuorumKey(h, p, s); err != nil {
			return nil, err
		}
		return struct {
			Username string `json:"username"`
			Role     string `json:"role"`
		}{c.User(), c.Role()}, nil
	}
}
