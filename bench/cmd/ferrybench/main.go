// Command ferrybench runs Ferry's benchmarks against the peers and writes
// docs/benchmarks.md from their results. bench/run.sh, which `make bench`
// calls, installs the peers and runs both subcommands:
//
//	ferrybench run --results DIR --agent BIN --tools DIR --repo DIR [--runs N] [--smoke] [scenario...]
//	ferrybench doc --results DIR --out docs/benchmarks.md --plots docs/benchmarks
//
// The logic lives in packages bench/harness and bench/benchdoc.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ferry-dev/ferry/bench/benchdoc"
	"github.com/ferry-dev/ferry/bench/harness"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ferrybench run|doc [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "doc":
		err = doc(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "ferrybench: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferrybench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var o harness.Options
	fs.StringVar(&o.Results, "results", "bench/results", "raw results directory")
	fs.StringVar(&o.Agent, "agent", "bin/ferry-agent", "the ferry-agent binary")
	fs.StringVar(&o.Tools, "tools", "bench/results/bin", "directory of the bench binaries (upstream, loadgen)")
	fs.StringVar(&o.Repo, "repo", ".", "repository root")
	fs.IntVar(&o.Runs, "runs", 0, "runs per configuration (default 3; 1 with --smoke)")
	fs.BoolVar(&o.Smoke, "smoke", false, "short runs to check the scripts; the numbers are marked as smoke")
	only := fs.String("only", "", "comma-separated configuration ID prefixes to run (default: all)")
	_ = fs.Parse(args)
	if *only != "" {
		o.Only = strings.Split(*only, ",")
	}
	h, err := harness.New(o)
	if err != nil {
		return err
	}
	// The control-plane scenario uses controller-runtime's client, which
	// logs nothing worth reading here; without a logger it would print a
	// warning and a stack trace.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return h.Run(ctx, fs.Args())
}

func doc(args []string) error {
	fs := flag.NewFlagSet("doc", flag.ExitOnError)
	results := fs.String("results", "bench/results", "raw results directory")
	out := fs.String("out", "docs/benchmarks.md", "the document to write")
	plots := fs.String("plots", "docs/benchmarks", "directory of the plots, relative links from the document")
	_ = fs.Parse(args)
	return benchdoc.Write(*results, *out, *plots)
}
