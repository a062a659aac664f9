package cloudhsmcli

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
)

// help answers "help" (the command list) and "help <command>" (its flags),
// in text as CloudHSM CLI prints them; no JSON envelope.
func (c *Context) help(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(c.stdout, "CloudHSM CLI commands (gohsm)\n\nUsage: cloudhsm-cli <COMMAND> [OPTIONS]\n       cloudhsm-cli interactive\n\nCommands:")
		tw := tabwriter.NewWriter(c.stdout, 2, 8, 2, ' ', 0)
		for _, cmd := range table {
			fmt.Fprintf(tw, "  %s\t%s\n", cmd.Name(), cmd.Help)
		}
		fmt.Fprintln(tw, "  help [COMMAND]\tPrint this message or the help of the given command")
		fmt.Fprintln(tw, "  quit, exit\tEnd interactive mode")
		tw.Flush()
		return 0
	}
	cmd, n := lookup(args)
	if cmd == nil || n != len(args) {
		var group []string
		for _, cmd := range table {
			if len(cmd.Path) > len(args) && strings.Join(cmd.Path[:len(args)], " ") == strings.Join(args, " ") {
				group = append(group, fmt.Sprintf("  %s\t%s", cmd.Name(), cmd.Help))
			}
		}
		if len(group) == 0 {
			return c.fail(unknownCommand(args))
		}
		fmt.Fprintf(c.stdout, "Usage: %s <COMMAND>\n\nCommands:\n", strings.Join(args, " "))
		tw := tabwriter.NewWriter(c.stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(group, "\n"))
		tw.Flush()
		return 0
	}
	fs := flag.NewFlagSet(cmd.Name(), flag.ContinueOnError)
	cmd.Setup(fs)
	c.commandHelp(cmd, fs)
	return 0
}

// commandHelp prints a command's help: its line, usage and flags with
// clap's --name <NAME> spelling.
func (c *Context) commandHelp(cmd *Command, fs *flag.FlagSet) {
	fmt.Fprintf(c.stdout, "%s\n\nUsage: %s [OPTIONS]\n\nOptions:\n", cmd.Help, cmd.Name())
	tw := tabwriter.NewWriter(c.stdout, 2, 8, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-" // a short form: -v for --verbose
		}
		arg := fmt.Sprintf("%s%s <%s>", dash, f.Name, valueName(f.Name))
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			arg = dash + f.Name
		} else if isMulti(fs, f.Name) {
			arg = fmt.Sprintf("--%s [<%s>...]", f.Name, valueName(f.Name))
		}
		usage := f.Usage
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
			usage += fmt.Sprintf(" [default: %s]", f.DefValue)
		}
		fmt.Fprintf(tw, "      %s\t%s\n", arg, usage)
	})
	fmt.Fprintln(tw, "  -h, --help\tPrint help")
	tw.Flush()
}
