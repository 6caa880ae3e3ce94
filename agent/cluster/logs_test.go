package cluster

import "github.com/ferry-dev/ferry/agent/internal/agenttest"

// logTo makes the agent log to book: an option of runAgent's.
func logTo(book *agenttest.Logbook) func(*Options) {
	return func(o *Options) { o.Log = book.Logger() }
}
