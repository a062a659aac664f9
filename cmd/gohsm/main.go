// Command gohsm manages gohsm tokens: it initialises and deletes tokens,
// manages crypto officers and crypto users, and generates, lists, shares and
// deletes keys. It works on the same token store as libgohsm.so, through
// package token (never through the C library), so it builds with
// CGO_ENABLED=0.
//
//	gohsm [global flags] <command> [flags]
//
// Global flags (accepted before or after the command):
//
//	--config FILE     configuration file (default: $GOHSM_CONF, XDG, /etc, embedded default)
//	--slot N          slot ID (default: the first slot)
//	--token LABEL     the slot whose token has this label (error if none or several)
//	--pin NAME:PASS   login PIN (default: $GOHSM_PIN, else asked on the
//	                  terminal without echo); a bare password names
//	                  "admin" (crypto officer) or "user" (crypto user)
//	--json            machine output: {"error_code":0,"data":...}, errors
//	                  {"error_code":1,"error":...,"ckr":...,"code":...}
//	--version         print gohsm's version (the library's CK_INFO version) and exit
//
// Exit status: 0 on success, 1 on error (one line on standard error), 2 on
// a usage error. docs/cli.md lists the error codes.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"gohsm/internal/admin"
	"gohsm/internal/ck"
	"gohsm/internal/cloudhsmcli"
	"gohsm/internal/cmdpath"
	"gohsm/internal/termpw"
	"gohsm/token"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// globals are the flags every command accepts.
type globals struct {
	config  string
	slot    ck.ULong
	slotSet bool
	label   string // --token
	pin     string
	json    bool
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.config, "config", g.config, "configuration `file` (default: $GOHSM_CONF, XDG, /etc, embedded)")
	fs.Func("slot", "slot `ID` (default: the first slot)", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fmt.Errorf("not a slot number")
		}
		g.slot, g.slotSet = ck.ULong(n), true
		return nil
	})
	fs.StringVar(&g.label, "token", g.label, "the slot whose token has this `label`")
	fs.StringVar(&g.pin, "pin", g.pin, "login `name:password` (default: $GOHSM_PIN, else asked on the terminal)")
	fs.BoolVar(&g.json, "json", g.json, "machine-readable JSON output")
}

// usageError is a mistake in the command line: exit status 2 and the
// command's usage line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// cliError is an error of the CLI's own with a stable code for scripts
// (docs/cli.md, "Errors for scripts"), wrapping the Cryptoki error behind
// it when there is one: admin's, which the console shares.
type cliError = admin.Error

func cliErrorf(code, format string, args ...any) error {
	return admin.Errorf(code, format, args...)
}

// The CLI's own error codes; a Cryptoki error's code is its CKR name, a
// token.Mistake's its Code.
const (
	codeUsage            = "usage"                 // a mistake in the command line (exit status 2)
	codeConfig           = "config"                // the configuration cannot be read or is invalid
	codeNoSuchToken      = "no_such_token"         // --token names no token
	codeAmbiguousToken   = "ambiguous_token"       // --token names several tokens
	codeTokenInitialized = "token_initialized"     // token init on an initialised token without --yes
	codeNotInitialized   = "token_not_initialized" // a command that needs a token before token init
	codeNoCluster        = admin.CodeNoCluster     // a cluster command on a slot without an emulated cluster
	codeNoSuchHSM        = admin.CodeNoSuchHSM     // cluster hsm: K names no HSM of the cluster
	codeBadPlan          = "bad_plan"              // cluster plan load: the file is not a valid fault plan
	codeStoreUnreachable = "store_unreachable"     // store status: the slot's database does not answer
	codeStoreVersion     = "store_version"         // store status: the database's schema is not this gohsm's (or not a token store)
	codeInternal         = "internal"              // a bug: please report it
)

// need is the login a command requires; it also words the explanation of
// CKR_USER_NOT_LOGGED_IN.
type need = admin.Need

const (
	needNone = admin.NeedNone
	needCO   = admin.NeedCO  // crypto officer
	needCU   = admin.NeedCU  // crypto user
	needAny  = admin.NeedAny // crypto officer, or a crypto user acting on itself
)

// command is one row of the command table. setup defines the command's own
// flags on fs and returns the function that runs it; the flags are parsed
// between the two.
type command struct {
	path  []string
	args  string // synopsis after the path
	help  string
	need  need
	setup func(fs *flag.FlagSet) func(e *env) error
	// operands name the words the command takes after its path ("K",
	// "FILE"), each required; the run function finds them in env.operands.
	operands []string
}

func (c *command) name() string { return strings.Join(c.path, " ") }

func (c *command) usageLine() string {
	s := "usage: gohsm " + c.name()
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// testOnlyStdin replaces standard input in tests (a terminal, or none).
var testOnlyStdin *os.File

// run is the whole CLI: main only exits with its result, and tests call it
// in-process.
func run(args []string, stdout, stderr io.Writer) (code int) {
	g := &globals{}
	e := &env{g: g, stdout: stdout, stderr: stderr, stdin: os.Stdin}
	if testOnlyStdin != nil {
		e.stdin = testOnlyStdin
	}
	defer func() {
		if r := recover(); r != nil {
			code = e.fail(cliErrorf(codeInternal, "internal error: %v", r), nil)
		}
	}()
	defer e.close()

	gfs := newFlagSet("gohsm")
	g.register(gfs)
	showVersion := gfs.Bool("version", false, "print gohsm's version and exit")
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout)
			return exitOK
		}
		return e.fail(usagef("%v", err), nil)
	}
	if *showVersion {
		v := fmt.Sprintf("%d.%d", token.VersionMajor, token.VersionMinor)
		if g.json {
			b, _ := json.Marshal(map[string]any{"error_code": 0, "data": map[string]string{
				"version": v, "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH}})
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			fmt.Fprintf(stdout, "gohsm %s (%s, %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		}
		return exitOK
	}
	rest := gfs.Args()
	if len(rest) == 0 {
		return e.fail(usagef("missing command"), nil)
	}
	if rest[0] == "help" {
		printHelp(stdout)
		return exitOK
	}
	if rest[0] == "cloudhsm-cli" {
		// CloudHSM CLI's own command set (package cloudhsmcli), on the
		// token --config and --slot select.
		opts := cloudhsmcli.Options{Config: g.config}
		if opts.Config == "" {
			opts.Config = os.Getenv("GOHSM_CONF")
		}
		if g.label != "" {
			// The label names the slot; cloudhsm-cli opens the module
			// itself, after this one is closed.
			s, err := e.slot()
			if err != nil {
				return e.fail(err, nil)
			}
			g.slot, g.slotSet = s.ID(), true
			e.close()
		}
		if g.slotSet {
			n := uint(g.slot)
			opts.Slot = &n
		}
		return cloudhsmcli.Run(rest[1:], os.Stdin, stdout, stderr, opts)
	}
	before := args[:len(args)-len(rest)] // the global flags
	cmd := lookup(rest)
	if cmd == nil {
		return e.fail(unknownCommand(before, rest), nil)
	}
	e.cmd = cmd
	fs := newFlagSet(cmd.name())
	g.register(fs)
	runCmd := cmd.setup(fs)
	words := rest[len(cmd.path):]
	for {
		// Flags may come before, between and after the operands: the
		// flag package stops at the first operand, so parsing resumes
		// after each one.
		if err := fs.Parse(words); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printCommandHelp(stdout, cmd, fs)
				return exitOK
			}
			return e.fail(usagef("%v", err), cmd)
		}
		if fs.NArg() == 0 || len(e.operands) == len(cmd.operands) {
			break
		}
		e.operands = append(e.operands, fs.Arg(0))
		words = fs.Args()[1:]
	}
	if fs.NArg() > 0 {
		return e.fail(usagef("unexpected argument %s", shownWord(fs.Arg(0), before, rest[:len(rest)-fs.NArg()])), cmd)
	}
	if n := len(e.operands); n < len(cmd.operands) {
		return e.fail(usagef("missing %s", cmd.operands[n]), cmd)
	}
	if err := runCmd(e); err != nil {
		return e.fail(err, cmd)
	}
	return exitOK
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by fail, help by printCommandHelp
	return fs
}

// lookup finds the command whose path is the longest prefix of args.
func lookup(args []string) *command {
	i := cmdpath.Longest(args, len(commands), func(i int) []string { return commands[i].path })
	if i < 0 {
		return nil
	}
	return &commands[i]
}

// secretFlags take a password as their value.
var secretFlags = []string{"pin", "password"}

// shownWord is how a usage error names word, an argument gohsm did not
// expect, given the arguments before it (in any number of slices):
// quoted, unless a --pin or --password came before it. A password
// with a space, or a PIN typed as "--pin admin officer-pw", splits into
// words, and the one after the flag's value lands where a command or an
// argument was expected; echoing it would print part of a password on the
// terminal, into logs and into --json output. The error then says where
// the word was instead of what it was.
func shownWord(word string, before ...[]string) string {
	for _, args := range before {
		if name := cmdpath.SecretFlag(args, secretFlags...); name != "" {
			return "(not shown: it comes after --" + name + " and may be part of a password)"
		}
	}
	return strconv.Quote(word)
}

// unknownCommand words the error for args that name no command: a group
// ("gohsm key") lists its subcommands. before are the arguments ahead of
// args (the global flags), for shownWord.
func unknownCommand(before, args []string) error {
	for n := len(args); n > 0; n-- {
		var subs []string
		for _, c := range commands {
			if len(c.path) > n && strings.Join(c.path[:n], " ") == strings.Join(args[:n], " ") {
				if w := c.path[n]; len(subs) == 0 || subs[len(subs)-1] != w {
					subs = append(subs, w)
				}
			}
		}
		if len(subs) > 0 {
			group := strings.Join(args[:n], " ")
			if n == len(args) {
				return usagef("%s: missing subcommand (one of: %s)", group, strings.Join(subs, ", "))
			}
			return usagef("%s: unknown subcommand %s (one of: %s)", group, shownWord(args[n], before, args[:n]), strings.Join(subs, ", "))
		}
	}
	return usagef("unknown command %s", shownWord(args[0], before))
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "usage: gohsm [--config FILE] [--slot N | --token LABEL] [--pin NAME:PASSWORD] [--json] <command> [flags]")
	fmt.Fprintln(w, "       gohsm --version")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-40s %s\n", c.name()+" "+c.args, c.help)
	}
	fmt.Fprintln(w, "\nThe PIN comes from --pin, $GOHSM_PIN or the terminal. 'gohsm <command> -h' shows a command's flags;")
	fmt.Fprintln(w, "docs/cli.md has the rest, the error codes of --json among it.")
}

func printCommandHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintln(w, c.usageLine())
	fmt.Fprintf(w, "\n%s\n\nflags:\n", c.help)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// env is what a command runs with: the parsed global flags, the outputs and
// the module, opened on first use.
type env struct {
	g              *globals
	cmd            *command
	stdout, stderr io.Writer
	stdin          *os.File // passwords: a terminal is asked, a pipe read
	m              *token.Module
	operands       []string // the command's operands, as command.operands names them
}

func (e *env) close() {
	if e.m != nil {
		e.m.Close()
		e.m = nil
	}
}

// module loads the configuration and opens the module.
func (e *env) module() (*token.Module, error) {
	if e.m != nil {
		return e.m, nil
	}
	m, err := token.OpenTool(e.g.config)
	if err != nil {
		return nil, configErr(err)
	}
	e.m = m
	return m, nil
}

// configErr gives a configuration error its code; other errors pass.
func configErr(err error) error {
	if token.IsConfigError(err) {
		return &cliError{Code: codeConfig, Msg: err.Error()}
	}
	return err
}

// slot returns the selected slot (--slot, --token, else the first).
func (e *env) slot() (*token.Slot, error) {
	if e.g.slotSet && e.g.label != "" {
		return nil, usagef("--slot and --token both select a slot: give one")
	}
	m, err := e.module()
	if err != nil {
		return nil, err
	}
	if e.g.slotSet {
		return m.Slot(e.g.slot)
	}
	if e.g.label != "" {
		return e.slotByLabel(m)
	}
	ids := m.SlotIDs()
	if len(ids) == 0 {
		return nil, fmt.Errorf("configuration has no slot")
	}
	return m.Slot(ids[0])
}

// slotByLabel finds the slot whose token has label --token, as
// C_GetTokenInfo reports it (an uninitialised token: its slot's configured
// label), as pkcs11-tool's --token-label does. A token that cannot be read
// matches nothing.
func (e *env) slotByLabel(m *token.Module) (*token.Slot, error) {
	var found []*token.Slot
	var ids []string
	for _, id := range m.SlotIDs() {
		s, err := m.Slot(id)
		if err != nil {
			return nil, err
		}
		ti, err := s.TokenInfo()
		if err != nil {
			continue
		}
		if strings.TrimRight(ti.Label, " ") == e.g.label {
			found = append(found, s)
			ids = append(ids, fmt.Sprint(id))
		}
	}
	switch len(found) {
	case 0:
		return nil, cliErrorf(codeNoSuchToken, "no token labelled %q ('gohsm token list' shows the labels)", e.g.label)
	case 1:
		return found[0], nil
	}
	return nil, cliErrorf(codeAmbiguousToken, "%d tokens are labelled %q (slots %s): use --slot", len(found), e.g.label, strings.Join(ids, ", "))
}

// pin returns the login PIN from --pin or $GOHSM_PIN, else asks for it on
// the terminal without echo; without a terminal (a script, CI) it is a
// usage error, never a wait for input.
func (e *env) pin() ([]byte, error) {
	if e.g.pin != "" {
		return []byte(e.g.pin), nil
	}
	if p := os.Getenv("GOHSM_PIN"); p != "" {
		return []byte(p), nil
	}
	if termpw.IsTerminal(e.stdin) {
		p, err := termpw.Read(e.stdin, e.stderr, "PIN (name:password): ")
		if err != nil {
			return nil, err
		}
		if len(p) == 0 {
			return nil, usagef("empty PIN")
		}
		return p, nil
	}
	return nil, usagef("needs --pin NAME:PASSWORD or $GOHSM_PIN (or a terminal to ask on)")
}

// newPIN is pin for a PIN that a command sets (token init's first
// officer): asked on the terminal, it is asked twice, since a typo there
// locks everyone out.
func (e *env) newPIN() ([]byte, error) {
	if e.g.pin != "" || os.Getenv("GOHSM_PIN") != "" || !termpw.IsTerminal(e.stdin) {
		return e.pin()
	}
	return e.askTwice("PIN of the new crypto officer (name:password): ", "Confirm PIN: ", "PIN")
}

// askTwice asks for a new secret (what: "PIN", "password") on the
// terminal, then again to confirm it: a typo in a secret that is being
// set would lock its owner out.
func (e *env) askTwice(prompt, confirm, what string) ([]byte, error) {
	p, err := termpw.Read(e.stdin, e.stderr, prompt)
	if err != nil {
		return nil, err
	}
	again, err := termpw.Read(e.stdin, e.stderr, confirm)
	if err != nil {
		clear(p)
		return nil, err
	}
	same := bytes.Equal(p, again)
	clear(again)
	switch {
	case !same:
		clear(p)
		return nil, usagef("the %ss do not match", what)
	case len(p) == 0:
		return nil, usagef("empty %s", what)
	}
	return p, nil
}

// session opens a read-write session on the selected slot and logs in as
// the command needs. The session ends when the module closes.
func (e *env) session() (ck.ULong, error) {
	var pin []byte
	if e.cmd.need != needNone {
		p, err := e.pin() // a usage error comes before any token access
		if err != nil {
			return 0, err
		}
		pin = p
	}
	s, err := e.slot()
	if err != nil {
		return 0, err
	}
	h, err := e.m.OpenSession(s.ID(), ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		return 0, notInitialized(s, err)
	}
	if e.cmd.need == needNone {
		return h, nil
	}
	// The role's user type (admin.UserType); a bare password is the
	// role's default user's.
	if _, err := admin.Login(e.m, h, pin, e.cmd.need); err != nil {
		return 0, err
	}
	return h, nil
}

// notInitialized tells an uninitialised token (a newcomer's first command
// before token init) from a damaged one: both are CKR_TOKEN_NOT_RECOGNIZED
// to Cryptoki, but only the first has an obvious next step.
func notInitialized(s *token.Slot, err error) error {
	if !errors.Is(err, ck.CKR_TOKEN_NOT_RECOGNIZED) {
		return err
	}
	if ti, terr := s.TokenInfo(); terr != nil || ti.Initialized {
		return err // damaged, or initialised since
	}
	return &cliError{Code: codeNotInitialized, Err: ck.CKR_TOKEN_NOT_RECOGNIZED,
		Msg: fmt.Sprintf("slot %d has no token yet: make one with 'gohsm token init --label LABEL'", s.ID())}
}

// emit writes a command's result: JSON data, or text for people.
func (e *env) emit(data any, text func(w io.Writer)) error {
	if e.g.json {
		return writeJSON(e.stdout, struct {
			Code int `json:"error_code"`
			Data any `json:"data"`
		}{0, data})
	}
	text(e.stdout)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// fail reports err: one line on standard error (plus the usage line for a
// usage error), and with --json the error object on standard output.
func (e *env) fail(err error, cmd *command) int {
	msg := "gohsm: "
	if cmd != nil {
		msg += cmd.name() + ": "
	}
	n := needNone
	if cmd != nil {
		n = cmd.need
	}
	msg += describe(err, n)
	fmt.Fprintln(e.stderr, msg)
	var ue *usageError
	code := exitError
	if errors.As(err, &ue) {
		code = exitUsage
		if cmd != nil {
			fmt.Fprintln(e.stderr, cmd.usageLine())
		} else {
			fmt.Fprintln(e.stderr, "usage: gohsm [global flags] <command> [flags]   ('gohsm help' lists the commands)")
		}
	}
	if e.g.json {
		ckr, c := errorCode(err)
		writeJSON(e.stdout, jsonError{1, strings.TrimPrefix(msg, "gohsm: "), ckr, c})
	}
	return code
}

// jsonError is --json's error object. error_code stays 1 for every error,
// as before, and error the text of the line on standard error; ckr and
// code are for scripts (docs/cli.md, "Errors for scripts").
type jsonError struct {
	Code  int    `json:"error_code"`
	Error string `json:"error"`
	CKR   string `json:"ckr,omitempty"` // the Cryptoki return value's name, when one is involved
	Kind  string `json:"code"`          // stable: a mistake's code, else the CKR name, else the CLI's own
}

// errorCode returns the CKR name in err (if any) and its stable code:
// "usage" for a mistake in the command line, else admin.ErrorCode's.
func errorCode(err error) (ckr, code string) {
	var ue *usageError
	if errors.As(err, &ue) {
		ckr, _ = admin.ErrorCode(err)
		return ckr, codeUsage
	}
	return admin.ErrorCode(err)
}

// explanations word the Cryptoki errors people meet at the CLI.
var explanations = map[ck.RV]string{
	ck.CKR_PIN_INCORRECT:            "wrong name or password",
	ck.CKR_PIN_LOCKED:               "user is locked (a crypto officer must set a new password)",
	ck.CKR_PIN_LEN_RANGE:            "password length out of range",
	ck.CKR_PIN_INVALID:              "invalid user name or password",
	ck.CKR_USER_PIN_NOT_INITIALIZED: "user has no password yet",
	ck.CKR_TOKEN_NOT_RECOGNIZED:     "token not initialised (gohsm token init), or damaged",
	ck.CKR_SLOT_ID_INVALID:          "no such slot",
	ck.CKR_SESSION_EXISTS:           "token in use",
	ck.CKR_ACTION_PROHIBITED:        "not allowed",
	ck.CKR_ARGUMENTS_BAD:            "invalid argument",
	ck.CKR_OBJECT_HANDLE_INVALID:    "no such key (or not visible to this user)",
	ck.CKR_TEMPLATE_INCONSISTENT:    "inconsistent key attributes",
	ck.CKR_ATTRIBUTE_VALUE_INVALID:  "invalid key attribute",
	ck.CKR_KEY_SIZE_RANGE:           "key size not supported",
	ck.CKR_MECHANISM_INVALID:        "algorithm not supported",
	ck.CKR_DEVICE_ERROR:             "token store error",
}

var loginNeeded = map[need]string{
	needNone: "needs a login",
	needCO:   "needs a crypto officer login",
	needCU:   "needs a crypto user login",
	needAny:  "needs a crypto officer login, or the user's own",
}

// describe turns an error into the text after "gohsm: <command>: ": the
// Cryptoki code, what it means, and the token's detail.
func describe(err error, n need) string {
	var rv ck.RV
	if !errors.As(err, &rv) {
		return err.Error()
	}
	name := rv.String()
	text := explanations[rv]
	if rv == ck.CKR_USER_NOT_LOGGED_IN {
		text = loginNeeded[n]
	}
	detail := strings.TrimSuffix(err.Error(), ": "+name)
	detail = strings.TrimPrefix(detail, "token: ")
	s := name
	if token.MistakeCode(err) != "" {
		// The mistake says what is wrong; the CKR's gloss would not.
		return s + ": " + detail
	}
	var ce *cliError
	if errors.As(err, &ce) {
		return s + ": " + ce.Msg // the same: the CLI's own words
	}
	if text != "" {
		s += ": " + text
	}
	if detail != "" && detail != name {
		s += " (" + detail + ")"
	}
	return s
}
