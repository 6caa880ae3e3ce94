// Command kubectl-ferry is the kubectl plugin for Ferry: kubectl runs it as
// `kubectl ferry` when it is on the PATH. This main only wires the process
// to package internal/kubectlferry, where the commands live.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ferry-dev/ferry/internal/kubectlferry"
)

func main() {
	// controller-runtime's client logs nothing worth showing here; without a
	// logger it complains on standard error after 30 s (restart --wait).
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := (&kubectlferry.App{Out: os.Stdout, Err: os.Stderr}).Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
