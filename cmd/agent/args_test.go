package main

import (
	"flag"
	"slices"
	"testing"
)

// TestParseArgs: flags anywhere among the operands, and "--" ending the
// flags only where it stands as a flag, not as a flag's value.
func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"a", "--dir", "/x", "b"}, []string{"a", "b"}},
		{[]string{"--", "--dir", "b"}, []string{"--dir", "b"}},
		{[]string{"a", "--", "--wait"}, []string{"a", "--wait"}},
		// "--" as --dir's value: the flags go on after it.
		{[]string{"--dir", "--", "stray", "--wait"}, []string{"stray"}},
		{[]string{"--dir=--", "stray", "--wait"}, []string{"stray"}},
		// --dir takes "--wait" as its value; the "--" after it ends the flags.
		{[]string{"--dir", "--wait", "--", "--wait"}, []string{"--wait"}},
		{[]string{"--wait", "--", "x"}, []string{"x"}},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		dir := fs.String("dir", "", "")
		wait := fs.Bool("wait", false, "")
		if got := parseArgs(fs, tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("parseArgs(%q) = %q (dir %q, wait %v), want %q", tc.args, got, *dir, *wait, tc.want)
		}
	}
}
