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
		if endsFlags(fs, args[:len(args)-len(rest)]) {
			return append(operands, rest...)
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}

// endsFlags tells whether the flags and values fs.Parse consumed end with
// "--" standing as a flag, which ends the flags, rather than as a
// value-taking flag's value ("--request-buffer-dir --"), after which the
// flags go on. It walks them as the flag package did: a flag without "="
// that is not boolean took the next item as its value.
func endsFlags(fs *flag.FlagSet, consumed []string) bool {
	for i := 0; i < len(consumed); i++ {
		item := consumed[i]
		if item == "--" {
			return i == len(consumed)-1
		}
		name := strings.TrimLeft(item, "-")
		if strings.Contains(name, "=") || isBoolFlag(fs.Lookup(name)) {
			continue
		}
		i++ // its value
	}
	return false
}

// isBoolFlag is the flag package's own test of a flag that takes no
// separate value.
func isBoolFlag(f *flag.Flag) bool {
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
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
