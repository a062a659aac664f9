// Package cloudhsmcli is gohsm's CloudHSM CLI: the commands, flags, JSON
// shapes and error texts of AWS CloudHSM CLI (Client SDK 5), over a gohsm
// token through package token, the same API as the library and the gohsm
// command. It backs the cloudhsm-cli binary and `gohsm cloudhsm-cli`.
//
// Modes, as CloudHSM CLI's:
//
//	cloudhsm-cli <command> [flags]   single-command mode: the login comes
//	                                 from CLOUDHSM_ROLE and CLOUDHSM_PIN
//	cloudhsm-cli interactive         interactive mode: login, commands,
//	                                 logout, quit
//
// Output is CloudHSM's envelope, {"error_code":0,"data":...}; an error
// exits non-zero with {"error_code":1,"data":"<text>"} (see errors.go).
//
// Commands live in one file per area (cluster.go, user.go, key.go,
// crypto.go, quorum.go, ...), each adding its rows to the table with
// register in an init function.
package cloudhsmcli

import (
	"flag"
	"io"
	"sort"
	"strings"
)

// Options says which gohsm token the CLI works on: a configuration file
// (empty: $GOHSM_CONF, XDG, /etc, the embedded default, as everywhere)
// and a slot (nil: the first).
type Options struct {
	Config string
	Slot   *uint
}

// Role is who may run a command, in CloudHSM's terms.
type Role int

const (
	Anyone     Role = iota // no login (user list, cluster hsm-info, ...)
	Admin                  // an admin (crypto officer)
	CryptoUser             // a crypto user
	LoggedIn               // either role
)

// Command is one row of the command table: the words that name it
// ("key", "generate-symmetric", "aes"), a one-line help, who may run it,
// and a setup that defines its flags on fs and returns its run function.
// run returns the value that becomes "data" in the JSON envelope.
type Command struct {
	Path  []string
	Help  string
	Role  Role
	Setup func(fs *flag.FlagSet) func(c *Context) (any, error)
}

// Name is the command's words joined by spaces.
func (c *Command) Name() string { return strings.Join(c.Path, " ") }

var table []*Command

// register adds commands to the table (from the init functions of the
// files that define them).
func register(cmds ...Command) {
	for i := range cmds {
		table = append(table, &cmds[i])
	}
	sort.SliceStable(table, func(i, j int) bool { return table[i].Name() < table[j].Name() })
}

// Run is one invocation: args without the program name; no args, or
// "interactive", starts interactive mode on stdin. It returns the exit
// status.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer, opts Options) int {
	return runCLI(args, stdin, stdout, stderr, opts)
}
