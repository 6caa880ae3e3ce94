// Command ferry-agent is Ferry's node agent. It runs a Passenger-like proxy
// and pools of worker processes, standalone from an AppGroup file or, in a
// cluster, for the ProcessPools of its node. This main only wires flags;
// the agent lives in package agent/... .
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/ferry-dev/ferry/agent/pid1"
	"github.com/ferry-dev/ferry/internal/version"
)

const usage = `ferry-agent runs Passenger-style pools of worker processes behind a proxy.

Usage:
  ferry-agent --node-name NODE [flags]     serve the node's ProcessPools in a cluster
  ferry-agent standalone -f FILE [flags]   serve the AppGroups in FILE, without a cluster
  ferry-agent status [--json]              show pools and processes (the passenger-status view)
  ferry-agent restart NAME [--revision R] [--wait] [--timeout 30m]
                                           roll an AppGroup to a new revision, one process at a time
  ferry-agent reload                       re-read the standalone file (as SIGHUP does)
  ferry-agent version                      print the version

Run "ferry-agent COMMAND -h" for a command's flags ("ferry-agent cluster -h" for
those of the cluster mode).
`

func main() {
	if code, supervised := pid1.Supervise(); supervised {
		os.Exit(code)
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch {
	case strings.HasPrefix(cmd, "-") && cmd != "-h" && cmd != "--help" && cmd != "--version":
		err = runCluster(os.Args[1:])
	case cmd == "cluster":
		err = runCluster(args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry-agent:", err)
		os.Exit(1)
	}
	switch cmd {
	case "standalone":
		err = runStandalone(args)
	case "status":
		err = runStatus(args)
	case "restart":
		err = runRestart(args)
	case "reload":
		err = runReload(args)
	case "version", "--version":
		fmt.Println("ferry-agent", version.Version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	case "cluster":
	default:
		if !strings.HasPrefix(cmd, "-") {
			fmt.Fprintf(os.Stderr, "ferry-agent: unknown command %q\n\n%s", cmd, usage)
			os.Exit(2)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry-agent:", err)
		os.Exit(1)
	}
}
