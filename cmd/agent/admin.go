package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ferry-dev/ferry/agent/standalone"
	"github.com/ferry-dev/ferry/agent/statusview"
	"github.com/ferry-dev/ferry/controllers/contract"
)

func adminFlag(fs *flag.FlagSet) *string {
	return fs.String("admin-socket", standalone.DefaultAdminSocket(), "the standalone agent's admin socket")
}

func runStatus(args []string) error {
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	socket := adminFlag(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	operands := parseArgs(fs, args)
	if err := noOperands("status", operands); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := standalone.NewClient(*socket).Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return statusview.Write(os.Stdout, standalone.Header(st), standalone.View(st), time.Now())
}

func runRestart(args []string) error {
	fs := flag.NewFlagSet("restart", flag.ExitOnError)
	socket := adminFlag(fs)
	revision := fs.String("revision", "", "the revision to roll to (default: a new revision of the same code)")
	wait := fs.Bool("wait", false, "wait until the restart finished and the new revision lived the crash window (exit 0), or the pool resists it (exit 1, with the reason)")
	timeout := fs.Duration("timeout", 30*time.Minute, "how long the whole command may take: the request for the restart and, with --wait, the wait for its end")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: ferry-agent restart NAME [--revision R] [--wait] [--timeout 30m] [--admin-socket PATH]")
		fs.PrintDefaults()
	}
	operands := parseArgs(fs, args)
	if len(operands) > 1 {
		fs.Usage()
		return fmt.Errorf("restart takes one AppGroup NAME, got %q %s", operands, flagsHint)
	}
	if len(operands) == 0 || operands[0] == "" {
		fs.Usage()
		return errors.New("the AppGroup NAME is required")
	}
	name := operands[0]
	c := standalone.NewClient(*socket)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rev, err := c.Restart(ctx, name, *revision)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("gave up after %s (--timeout) waiting for the agent to take the restart of %s: %w", *timeout, name, err)
		}
		return err
	}
	fmt.Printf("Restarting %s to revision %s\n", name, rev)
	if !*wait {
		return nil
	}
	settling := func() {
		fmt.Printf("Every process of %s runs revision %s; waiting until it has lived the crash window (%s), "+
			"in which a process of it that dies counts as a deployment error\n", name, rev, contract.CrashWindow)
	}
	if err := standalone.WaitRestart(ctx, c, name, rev, 200*time.Millisecond, settling); err != nil {
		var gaveUp *standalone.GaveUpError
		if errors.As(err, &gaveUp) {
			gaveUp.After = *timeout // the user's, which the restart's request counted against too
		}
		return err
	}
	fmt.Printf("Every process of %s runs revision %s, which has lived the crash window\n", name, rev)
	return nil
}

func runReload(args []string) error {
	fs := flag.NewFlagSet("reload", flag.ExitOnError)
	socket := adminFlag(fs)
	operands := parseArgs(fs, args)
	if err := noOperands("reload", operands); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := standalone.NewClient(*socket).Reload(ctx); err != nil {
		return err
	}
	fmt.Println("Reloaded")
	return nil
}
