// Command roost is the Roost mail server and its administration CLI: one
// binary, `roost serve` to run the server and subcommands that work on the
// same store, also while a server runs. Each subcommand parses its own
// flags in its own file (commands_*.go) and does its work through the
// mailstore.Store that internal/app opens.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand (or a group's verb).
type command struct {
	name  string
	usage string // arguments, for the help text
	help  string // one line
	run   func(env *env, args []string) error
}

// env carries the process's streams so tests can drive commands.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// errUsage marks bad invocations (exit status 2).
var errUsage = errors.New("usage")

func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// commands lists every subcommand; groups ("user add") are two words.
func commands() []command {
	var cs []command
	cs = append(cs, serveCommands()...)
	cs = append(cs, domainCommands()...)
	cs = append(cs, userCommands()...)
	cs = append(cs, aliasCommands()...)
	cs = append(cs, mailboxCommands()...)
	cs = append(cs, importExportCommands()...)
	cs = append(cs, deletedCommands()...)
	cs = append(cs, queueCommands()...)
	cs = append(cs, configCommands()...)
	return cs
}

func main() {
	os.Exit(run(&env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

// run dispatches and turns any error into one line on stderr and a
// non-zero status.
func run(e *env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(e.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest, err := find(args)
	if err == nil {
		err = cmd.run(e, rest)
	}
	if err == nil {
		return 0
	}
	msg := strings.Join(strings.Fields(err.Error()), " ") // one line, always
	fmt.Fprintf(e.stderr, "roost: %s\n", msg)
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// find picks the command named by the first one or two words.
func find(args []string) (command, []string, error) {
	cs := commands()
	if len(args) >= 2 {
		for _, c := range cs {
			if c.name == args[0]+" "+args[1] {
				return c, args[2:], nil
			}
		}
	}
	for _, c := range cs {
		if c.name == args[0] {
			return c, args[1:], nil
		}
	}
	for _, c := range cs {
		if strings.HasPrefix(c.name, args[0]+" ") {
			if len(args) == 1 {
				return command{}, nil, usageError("%s needs a verb (see roost help)", args[0])
			}
			return command{}, nil, usageError("unknown command %q (see roost help)", args[0]+" "+args[1])
		}
	}
	return command{}, nil, usageError("unknown command %q (see roost help)", args[0])
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: roost COMMAND [ARGS] [--config FILE]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-40s %s\n", strings.TrimSpace(c.name+" "+c.usage), c.help)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "--config FILE: default $ROOST_CONFIG, then ./roost.toml; no file means all defaults.")
}
