package main

import (
	"flag"
	"fmt"
	"strings"
)

// parseArgs parses args with fs, flags anywhere among the arguments
// ("restart NAME --wait" and "restart --wait NAME" alike; after "--" every
// argument is an operand), and returns the operands. The flag package alone
// stops at the first operand and leaves every flag after it unparsed, which
// would silently drop them: "--trust-forwarded-for false --state-dir /x"
// (a boolean flag takes no separate value) turns the flag on, and ignores
// --state-dir. fs exits on a bad flag (flag.ExitOnError), as every
// command's does.
func parseArgs(fs *flag.FlagSet, args []string) []string {
	var operands []string
	for {
		_ = fs.Parse(args)
		rest := fs.Args()
		if len(rest) == 0 {
			return operands
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(operands, rest...)
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}

// flagsHint follows an error about a stray argument.
const flagsHint = "(flags are --name=value; a boolean flag is --name or --name=false)"

// noOperands refuses arguments a command does not take, naming them: a
// stray value is most often a boolean flag's (--flag=false, not --flag
// false).
func noOperands(cmd string, operands []string) error {
	if len(operands) == 0 {
		return nil
	}
	return fmt.Errorf("%s takes no argument %q %s", cmd, strings.Join(operands, " "), flagsHint)
}
