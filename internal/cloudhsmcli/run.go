package cloudhsmcli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"gohsm/internal/ck"
	"gohsm/token"
)

// Context is what a command runs with: the token (opened on first use),
// the session logged in as the command's role needs, and the outputs.
type Context struct {
	opts           Options
	stdin          io.Reader
	stdout, stderr io.Writer

	m    *token.Module
	slot *token.Slot
	h    ck.ULong // open session, 0 before the first use

	// user and role are who is logged in (interactive login, or
	// CLOUDHSM_PIN/CLOUDHSM_ROLE in single-command mode); "" when no one.
	user, role string
	pin        []byte
}

// Module opens the token's module on first use.
func (c *Context) Module() (*token.Module, *token.Slot, error) {
	if c.m != nil {
		return c.m, c.slot, nil
	}
	var cfg *token.Config
	var err error
	if c.opts.Config != "" {
		b, rerr := os.ReadFile(c.opts.Config)
		if rerr != nil {
			return nil, nil, fmt.Errorf("config: %w", rerr)
		}
		cfg, err = token.ParseConfig(string(b), c.opts.Config)
	} else {
		cfg, err = token.LoadConfig("")
	}
	if err != nil {
		return nil, nil, err
	}
	if cfg.LogFile == "" {
		cfg.LogFile = os.DevNull
	}
	m, err := token.Open(cfg)
	if err != nil {
		return nil, nil, err
	}
	ids := m.SlotIDs()
	var s *token.Slot
	switch {
	case c.opts.Slot != nil:
		s, err = m.Slot(ck.ULong(*c.opts.Slot))
	case len(ids) == 0:
		err = errors.New("configuration has no slot")
	default:
		s, err = m.Slot(ids[0])
	}
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	c.m, c.slot = m, s
	return m, s, nil
}

// Session returns a read-write session, logged in when someone is (the
// role a command needs is checked before it runs).
func (c *Context) Session() (ck.ULong, error) {
	if c.h != 0 {
		return c.h, nil
	}
	m, s, err := c.Module()
	if err != nil {
		return 0, err
	}
	h, err := m.OpenSession(s.ID(), ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		return 0, err
	}
	if c.user != "" {
		ut := ck.CKU_USER
		if c.role == "admin" {
			ut = ck.CKU_SO
		}
		if err := m.Login(h, ut, c.pin); err != nil {
			m.CloseSession(h)
			return 0, err
		}
	}
	c.h = h
	return h, nil
}

// Close ends the session and closes the module.
func (c *Context) Close() {
	if c.m != nil {
		c.m.Close()
		c.m, c.h = nil, 0
	}
}

// User and Role are who is logged in ("" when no one).
func (c *Context) User() string { return c.user }
func (c *Context) Role() string { return c.role }

// Stdin is where a command reads what it is given on standard input.
func (c *Context) Stdin() io.Reader { return c.stdin }

func runCLI(args []string, stdin io.Reader, stdout, stderr io.Writer, opts Options) int {
	c := &Context{opts: opts, stdin: stdin, stdout: stdout, stderr: stderr}
	defer c.Close()
	if len(args) == 0 || args[0] == "interactive" {
		return interactive(c)
	}
	if err := c.loginFromEnv(); err != nil {
		return c.fail(err)
	}
	return c.exec(args)
}

// loginFromEnv takes single-command mode's login: CLOUDHSM_ROLE
// (admin|crypto-user) and CLOUDHSM_PIN (username:password).
func (c *Context) loginFromEnv() error {
	role, pin := os.Getenv("CLOUDHSM_ROLE"), os.Getenv("CLOUDHSM_PIN")
	if role == "" && pin == "" {
		return nil
	}
	if role != "admin" && role != "crypto-user" {
		return fmt.Errorf("invalid value '%s' for CLOUDHSM_ROLE: expected admin or crypto-user", role)
	}
	name, _, ok := strings.Cut(pin, ":")
	if !ok || name == "" {
		return errors.New("CLOUDHSM_PIN must be username:password")
	}
	c.user, c.role, c.pin = strings.ToLower(name), role, []byte(pin)
	return nil
}

// exec runs one command line (single-command mode, or a line of
// interactive mode) and writes its envelope.
func (c *Context) exec(args []string) int {
	cmd, n := lookup(args)
	if cmd == nil {
		return c.fail(unknownCommand(args))
	}
	fs := flag.NewFlagSet(cmd.Name(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	run := cmd.Setup(fs)
	if err := fs.Parse(expandMulti(fs, args[n:])); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(c.stdout, "%s\n\nUsage: %s [OPTIONS]\n\nOptions:\n", cmd.Help, cmd.Name())
			fs.SetOutput(c.stdout)
			fs.PrintDefaults()
			return 0
		}
		return c.fail(usageErr{err.Error()})
	}
	if fs.NArg() > 0 {
		return c.fail(usageErr{fmt.Sprintf("unexpected argument '%s' found", fs.Arg(0))})
	}
	if err := c.allowed(cmd.Role); err != nil {
		return c.fail(err)
	}
	data, err := run(c)
	if err != nil {
		return c.fail(err)
	}
	writeEnvelope(c.stdout, 0, data)
	return 0
}

// allowed checks the login a command needs before it touches the token.
func (c *Context) allowed(r Role) error {
	switch {
	case r == Anyone:
	case c.user == "":
		return ErrNotLoggedIn
	case r == Admin && c.role != "admin", r == CryptoUser && c.role != "crypto-user":
		return ErrWrongRole
	}
	return nil
}

// lookup finds the command whose path is the longest prefix of args, and
// how many words it took.
func lookup(args []string) (*Command, int) {
	var best *Command
	for _, cmd := range table {
		if len(cmd.Path) > len(args) || best != nil && len(cmd.Path) <= len(best.Path) {
			continue
		}
		match := true
		for j, w := range cmd.Path {
			if args[j] != w {
				match = false
				break
			}
		}
		if match {
			best = cmd
		}
	}
	if best == nil {
		return nil, 0
	}
	return best, len(best.Path)
}

func unknownCommand(args []string) error {
	return usageErr{fmt.Sprintf("unrecognized subcommand '%s'", strings.Join(args, " "))}
}

// writeEnvelope writes CloudHSM CLI's JSON: {"error_code":N,"data":...},
// indented by two spaces as CloudHSM CLI prints it.
func writeEnvelope(w io.Writer, code int, data any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(struct {
		Code int `json:"error_code"`
		Data any `json:"data"`
	}{code, data})
}

// interactive is CloudHSM CLI's interactive mode: one command per line,
// "login", "logout", "quit". (To be completed: prompts without echo.)
func interactive(c *Context) int {
	return c.fail(usageErr{"interactive mode is not available yet"})
}
