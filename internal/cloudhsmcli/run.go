package cloudhsmcli

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"gohsm/internal/ck"
	"gohsm/internal/cmdpath"
	"gohsm/token"
)

// Context is what a command runs with: the token (opened on first use),
// the session logged in as the command's role needs, and the outputs.
type Context struct {
	opts           Options
	stdinFile      io.Reader     // the stdin given (a terminal or not)
	in             *bufio.Reader // reads it: commands and passwords share the buffer
	stdout, stderr io.Writer

	m    *token.Module
	slot *token.Slot
	h    ck.ULong // open session, 0 before the first use

	// user and role are who is logged in (interactive login, or
	// CLOUDHSM_PIN/CLOUDHSM_ROLE in single-command mode); "" when no one.
	user, role string
	pin        []byte
	loggedIn   bool // the session is logged in as user
}

// Module opens the token's module on first use.
func (c *Context) Module() (*token.Module, *token.Slot, error) {
	if c.m != nil {
		return c.m, c.slot, nil
	}
	m, err := token.OpenTool(c.opts.Config)
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
// role a command needs is checked before it runs). The login happens on
// the first command that needs the session, and stays.
func (c *Context) Session() (ck.ULong, error) {
	m, s, err := c.Module()
	if err != nil {
		return 0, err
	}
	if c.h == 0 {
		h, err := m.OpenSession(s.ID(), ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		if err != nil {
			return 0, err
		}
		c.h = h
	}
	if c.user != "" && !c.loggedIn {
		ut := ck.CKU_USER
		if c.role == "admin" {
			ut = ck.CKU_SO
		}
		if err := m.Login(c.h, ut, c.pin); err != nil {
			return 0, err
		}
		c.loggedIn = true
	}
	return c.h, nil
}

// moduleSession is the module and Session's session.
func (c *Context) moduleSession() (*token.Module, ck.ULong, error) {
	h, err := c.Session()
	if err != nil {
		return nil, 0, err
	}
	return c.m, h, nil
}

// Close ends the session and closes the module.
func (c *Context) Close() {
	if c.m != nil {
		c.m.Close()
		c.m, c.h, c.loggedIn = nil, 0, false
	}
}

// User and Role are who is logged in ("" when no one).
func (c *Context) User() string { return c.user }
func (c *Context) Role() string { return c.role }

// Stdin is where a command reads what it is given on standard input
// (buffered: interactive mode reads its command lines from it too).
func (c *Context) Stdin() io.Reader { return c.in }

func runCLI(args []string, stdin io.Reader, stdout, stderr io.Writer, opts Options) int {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	c := &Context{opts: opts, stdinFile: stdin, in: bufio.NewReader(stdin), stdout: stdout, stderr: stderr}
	defer c.Close()
	if len(args) == 0 || args[0] == "interactive" {
		if len(args) > 1 {
			return c.fail(usageErr{fmt.Sprintf("unexpected argument '%s' found", args[1])})
		}
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
// interactive mode) and writes its envelope. A panic in a command becomes
// an error envelope: bad input never kills an interactive session.
func (c *Context) exec(args []string) (code int) {
	defer func() {
		if r := recover(); r != nil {
			code = c.fail(fmt.Errorf("internal error: %v", r))
		}
	}()
	if args[0] == "help" {
		return c.help(args[1:])
	}
	cmd, n := lookup(args)
	if cmd == nil {
		return c.fail(unknownCommand(args))
	}
	fs := flag.NewFlagSet(cmd.Name(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	run := cmd.Setup(fs)
	flags := expandMulti(fs, args[n:])
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.commandHelp(cmd, fs)
			return 0
		}
		return c.fail(parseErr(err))
	}
	if fs.NArg() > 0 {
		return c.fail(unexpectedArgument(flags[:len(flags)-fs.NArg()], fs.Arg(0)))
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
	case r == Admin && c.role != "admin":
		return errOnlyRole("admin")
	case r == CryptoUser && c.role != "crypto-user":
		return errOnlyRole("crypto-user")
	}
	return nil
}

// lookup finds the command whose path is the longest prefix of args, and
// how many words it took.
func lookup(args []string) (*Command, int) {
	i := cmdpath.Longest(args, len(table), func(i int) []string { return table[i].Path })
	if i < 0 {
		return nil, 0
	}
	return table[i], len(table[i].Path)
}

// unknownCommand is clap's "unrecognized subcommand" naming the first word
// that no command's path continues with.
func unknownCommand(args []string) error {
	for i := 1; i <= len(args); i++ {
		if !isGroup(args[:i]) {
			return usageErr{fmt.Sprintf("unrecognized subcommand '%s'", args[i-1])}
		}
	}
	return usageErr{fmt.Sprintf("'%s' requires a subcommand (see: help %s)", strings.Join(args, " "), strings.Join(args, " "))}
}

// isGroup reports whether path begins some command's path.
func isGroup(path []string) bool {
	for _, cmd := range table {
		if len(cmd.Path) >= len(path) && slices.Equal(cmd.Path[:len(path)], path) {
			return true
		}
	}
	return false
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

// prompt is CloudHSM CLI's (UG:cloudhsm_cli-modes: "aws-cloudhsm > ").
const prompt = "aws-cloudhsm > "

// interactive is CloudHSM CLI's interactive mode: one command per line,
// "login" (kept across commands), "logout", "quit" or "exit" (or end of
// input), which exits 0: a command's failure is in its envelope.
func interactive(c *Context) int {
	for {
		fmt.Fprint(c.stdout, prompt)
		line, err := c.in.ReadString('\n')
		if line == "" && err != nil {
			fmt.Fprintln(c.stdout)
			return 0
		}
		args, perr := splitLine(line)
		switch {
		case perr != nil:
			c.fail(usageErr{perr.Error()})
		case len(args) == 0:
		case len(args) == 1 && (args[0] == "quit" || args[0] == "exit"):
			return 0
		default:
			c.exec(args)
		}
		if err != nil {
			fmt.Fprintln(c.stdout)
			return 0
		}
	}
}
