// Package freeport asks the kernel for a TCP port that nothing listens on:
// it listens on port 0 of an address, reads the port the kernel picked,
// and closes the listener. Spare draws one instead outside the kernel's
// ephemeral range, which no outgoing connection takes.
//
// It exists so that this is written once: the local stack
// (internal/localstack) picks the manager's and agents' metrics and health
// ports with it, the benchmark harness (bench/harness) the ports of the
// servers it starts, the agent (agent/spawn) a Command worker's $PORT (Spare), and
// the tests theirs through internal/testsupport, which fails the test on
// an error.
//
// Its known race: the port is free when asked, not when used. Between
// the close and the caller's bind, another process may take it, and the
// kernel may give it again to a caller that asks before the first has
// bound it, or to an outgoing connection (On's port is of the ephemeral
// range, which connections are given ports from; Spare's is not). A lost race shows as the caller's bind failing ("address
// already in use"), which each caller reports as its own error: the local
// stack fails to start, a test fails, a worker's spawn is tried again on
// another port. A caller that hands out ports faster than they are bound keeps
// a set of those given and not yet bound, as agent/spawn does for its
// workers' ports.
package freeport
