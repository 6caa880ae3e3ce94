package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-dev/ferry/bench/loadgen"
)

const defaultURL = "http://127.0.0.1:8080/"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var (
		urls      urlList
		clients   = fs.Int("c", 16, "concurrent clients, one keep-alive connection each")
		dur       = seconds(25 * time.Second)
		triggerAt seconds
		timeout   = seconds(loadgen.DefaultTimeout)
		trigger   = fs.String("trigger", "", "shell command run with sh -c at -trigger-at")
		pidHeader = fs.String("pid-header", loadgen.DefaultPIDHeader, "response header carrying the worker pid (else a decimal body)")
		method    = fs.String("method", "GET", "request method")
		body      = fs.String("body", "", "request body")
		jsonOut   = fs.String("json", "", "write the report as JSON to this file")
		csvOut    = fs.String("records", "", "write one CSV line per request to this file")
	)
	fs.Var(&urls, "url", "target URL, repeatable; client c uses URL c mod n (default "+defaultURL+")")
	fs.Var(&dur, "d", "load duration (25s, or bare seconds: 25); 0 runs until interrupted")
	fs.Var(&triggerAt, "trigger-at", "when to run -trigger, from the start of the run (8s, or bare seconds: 8)")
	fs.Var(&timeout, "timeout", "per-request timeout, body included")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "loadgen: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if (*trigger == "") != (triggerAt == 0) {
		fmt.Fprintln(os.Stderr, "loadgen: -trigger and -trigger-at go together")
		return 2
	}
	if len(urls) == 0 {
		urls = urlList{defaultURL}
	}

	cfg := loadgen.Config{
		URLs:      urls,
		Clients:   *clients,
		Duration:  time.Duration(dur),
		Timeout:   time.Duration(timeout),
		PIDHeader: *pidHeader,
		Method:    *method,
		Body:      []byte(*body),
		TriggerAt: time.Duration(triggerAt),
	}
	if *trigger != "" {
		cfg.Trigger = loadgen.ShellTrigger(*trigger, os.Stderr)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rep := res.Report()
	fmt.Print(rep)

	code := 0
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, rep); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			code = 1
		}
	}
	if *csvOut != "" {
		if err := writeCSV(*csvOut, res); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			code = 1
		}
	}
	if rep.Requests == 0 {
		fmt.Fprintln(os.Stderr, "loadgen: no request completed")
		code = 1
	}
	return code
}

func writeJSON(path string, rep loadgen.Report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func writeCSV(path string, res *loadgen.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := res.WriteCSV(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// urlList is a repeatable -url flag.
type urlList []string

func (u *urlList) String() string { return strings.Join(*u, ",") }

func (u *urlList) Set(s string) error {
	*u = append(*u, s)
	return nil
}

// seconds is a duration flag that also accepts bare seconds, as in the peer
// baseline's "-trigger-at 8".
type seconds time.Duration

func (s *seconds) String() string { return time.Duration(*s).String() }

func (s *seconds) Set(v string) error {
	if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
		*s = seconds(f * float64(time.Second))
	} else if d, err := time.ParseDuration(v); err == nil {
		*s = seconds(d)
	} else {
		return fmt.Errorf("invalid duration %q", v)
	}
	if *s < 0 {
		return fmt.Errorf("negative duration %q", v)
	}
	return nil
}
