// Package statusview renders the `passenger-status`-style view of pools:
// per pool its revision, queue and restart progress, and per process its
// PID, revision, state, sessions, processed requests, uptime, CPU, memory
// and last use, with "Rolling restarting..." on the process being replaced
// and "Resisting deployment error" with its reason, or "Rolling restart
// incomplete" with its errors. `ferry-agent status`
// and `kubectl ferry status` both print it.
package statusview

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// Pool is one pool as the view shows it.
type Pool struct {
	// Title names the pool: the AppGroup, and the node in a cluster.
	Title        string
	Root         string
	Listen       string
	Revision     string
	Strategy     ferryv1.RestartStrategy
	MinProcesses int32
	MaxProcesses int32
	QueueLength  int32
	Processes    []ferryv1.ProcessInfo
	Restart      *ferryv1.RestartProgress
	Resisting    *ferryv1.SpawnError
	// Incomplete is the last restart, to Revision, when it left processes
	// on an older revision (resistDeploymentErrors false: the
	// RollingRestart condition's RolloutIncomplete).
	Incomplete     *Incomplete
	ScalingError   *ferryv1.SpawnError
	LastSpawnError *ferryv1.SpawnError
	// ScalingRetryAt is when the next spawn is tried, while backing off
	// (the standalone agent's status has it).
	ScalingRetryAt *time.Time
	// Notes are extra lines, e.g. that an agent stopped reporting.
	Notes []string
}

// Incomplete is a restart that could not replace every process.
type Incomplete struct {
	// Left processes of Total run an older revision.
	Left, Total int32
	// Errors are the spawn errors met on the way, or those of them the
	// status keeps (a ProcessPool's, the last spawn error only).
	Errors []ferryv1.SpawnError
	// Failed is how many spawns failed, when Errors keeps fewer of them
	// (a standalone restart's summary, the first 16); 0: len(Errors).
	Failed int
	// Details says where the errors are in full: a command that prints
	// them, to paste (ferry-agent status --json | jq '...'). The view adds
	// that their output is there too when they have one (withOutput).
	Details string
	// ResistsNow: restart.resistDeploymentErrors is true now, turned on
	// since the restart to Revision left the processes behind; the view
	// says it was false then, not that it is.
	ResistsNow bool
	Revision   string
}

// Header is the "General information" block.
type Header struct {
	Agent string // e.g. "ferry-agent dev (standalone)"
	// Notes are lines shown after the general information (a failed
	// reload).
	Notes []string
}

// Write renders the view.
func Write(w io.Writer, h Header, pools []Pool, now time.Time) error {
	b := &strings.Builder{}
	procs := 0
	for _, p := range pools {
		procs += len(p.Processes)
	}
	b.WriteString("----------- General information -----------\n")
	tw := tabwriter.NewWriter(b, 0, 0, 1, ' ', 0)
	if h.Agent != "" {
		fmt.Fprintf(tw, "Agent\t: %s\n", h.Agent)
	}
	fmt.Fprintf(tw, "Date\t: %s\n", now.Format("2006-01-02 15:04:05 -0700"))
	fmt.Fprintf(tw, "App groups\t: %d\n", len(pools))
	fmt.Fprintf(tw, "Processes\t: %d\n", procs)
	_ = tw.Flush()
	for _, n := range h.Notes {
		fmt.Fprintf(b, "%s\n", n)
	}
	b.WriteString("\n----------- Application groups -----------\n")
	for i, p := range pools {
		if i > 0 {
			b.WriteString("\n")
		}
		writePool(b, p, now)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writePool(b *strings.Builder, p Pool, now time.Time) {
	fmt.Fprintf(b, "%s:\n", p.Title)
	if p.Root != "" {
		fmt.Fprintf(b, "  App root: %s\n", p.Root)
	}
	if p.Listen != "" {
		fmt.Fprintf(b, "  Listen  : %s\n", p.Listen)
	}
	fmt.Fprintf(b, "  Revision: %s (%s restarts, %d-%d processes)\n", p.Revision, strategy(p.Strategy), p.MinProcesses, p.MaxProcesses)
	fmt.Fprintf(b, "  Requests in queue: %d\n", p.QueueLength)
	if r := p.Restart; r != nil {
		fmt.Fprintf(b, "  Rolling restart: %d of %d processes replaced, to revision %s\n", r.Done, r.Total, r.Revision)
	}
	if e := p.Resisting; e != nil {
		fmt.Fprintf(b, "  Resisting deployment error: revision %s %s at %s: %s\n",
			e.Revision, contract.FailedHow(e.Reason, ""), e.Time.Format(time.RFC3339), e.Reason)
		writeIndented(b, e.Output, "    | ")
		b.WriteString("    " + ResistanceNote(p.Processes, e) + "\n")
	}
	if in := p.Incomplete; in != nil {
		end := ":" // the errors follow
		if len(in.Errors) == 0 {
			end = "."
		}
		setting := contract.NotResisted(in.ResistsNow, in.Revision)
		fmt.Fprintf(b, "  Rolling restart incomplete: %d of %d processes could not be replaced and keep serving an older revision "+
			"(%s); they are tried again at the next revision%s\n", in.Left, in.Total, setting, end)
		shown := min(len(in.Errors), maxErrorsShown)
		for _, e := range in.Errors[:shown] {
			fmt.Fprintf(b, "    - %s\n", firstLine(e.Reason))
		}
		// The errors not kept count too: "and 13 more" of a restart that
		// failed 20 spawns and kept 16 would say there were 16.
		if more := max(in.Failed, len(in.Errors)) - shown; shown > 0 && more > 0 {
			fmt.Fprintf(b, "    - and %d more\n", more)
		}
		if in.Details != "" && len(in.Errors) > 0 { // nothing to point at otherwise
			b.WriteString("    (" + in.Details + kept(in) + withOutput(in.Errors) + ".)\n")
		}
	}
	if e := p.ScalingError; e != nil {
		next := ""
		if at := p.ScalingRetryAt; at != nil {
			next = "; next try " + formatIn(at.Sub(now))
		}
		fmt.Fprintf(b, "  Scaling error (backing off%s): revision %s %s: %s\n", next, e.Revision,
			contract.FailedHow(e.Reason, ""), e.Reason)
		writeIndented(b, contract.LastLines(e.Output, 5), "    | ")
		b.WriteString("    Spawns are " + contract.SpawnsRetried + ".\n")
	}
	for _, n := range p.Notes {
		fmt.Fprintf(b, "  %s\n", n)
	}
	for _, proc := range p.Processes {
		writeProcess(b, proc, p.Revision, spawnedResisting(proc, p.Resisting), now)
	}
}

// ResistanceNote says what serves while a pool resists e: the old
// processes, those of another revision there before the pool came to
// resist (ready); or, when none is left (a restart that had replaced
// every one before the new revision's processes died), that none is, and
// what the pool spawns instead: processes of the revision it resists
// from, to keep minProcesses, which load the code in the app's root now.
func ResistanceNote(procs []ferryv1.ProcessInfo, e *ferryv1.SpawnError) string {
	for _, p := range procs {
		if p.Revision != e.Revision && p.State == ferryv1.ProcessReady && !spawnedResisting(p, e) {
			return "Old processes keep serving; nothing new is spawned or idle-cleaned until a new revision."
		}
	}
	return "No old process is left to serve: to keep minProcesses the pool spawns processes with the old " +
		"revision's app block, which load the code in the app's root now, and fail too if that code was " +
		"replaced in place (a Scaling error then says so). Nothing else is spawned or idle-cleaned until a new revision."
}

// spawnedResisting: p, of another revision than the one resisted (e), was
// spawned since the pool came to resist it, to keep minProcesses: no old
// process that kept serving. Compared as precisely as the times come: the
// agent has them to the nanosecond, but a status read from the API server
// or the admin API (metav1.Time, RFC 3339) has whole seconds, and a
// process started in the second the pool came to resist then ties, and
// counts as spawned since: the pool whose last process of the new
// revision died spawns one of the old at once, in that second, and an
// old process started in it before is rarer.
func spawnedResisting(p ferryv1.ProcessInfo, e *ferryv1.SpawnError) bool {
	return e != nil && p.Revision != e.Revision && !p.StartedAt.IsZero() && !p.StartedAt.Before(&e.Time)
}

func writeProcess(b *strings.Builder, p ferryv1.ProcessInfo, target string, resisting bool, now time.Time) {
	uptime := "-"
	if !p.StartedAt.IsZero() {
		uptime = formatUptime(now.Sub(p.StartedAt.Time))
	}
	lastUsed := lastUsed(p, now)
	pid := "-" // spawning: no process yet
	if p.PID != 0 {
		pid = strconv.Itoa(int(p.PID))
	}
	fmt.Fprintf(b, "  * PID: %-7s Sessions: %-7d Processed: %-7d Uptime: %s\n", pid, p.Sessions, p.Processed, uptime)
	fmt.Fprintf(b, "    CPU: %-7s Memory  : %-7s Last used: %s\n", fmt.Sprintf("%d%%", p.CPUPercent),
		formatBytes(p.MemoryBytes), lastUsed)
	old := ""
	switch {
	case resisting:
		old = " (old revision, spawned while resisting)"
	case p.Revision != target:
		old = " (old)"
	}
	// Wide enough for the longest state (Spawning, Draining, Stopping)
	// and a gap of two, as between the columns above: at %-8s they ran
	// into the next label ("State: Spawning Revision: ...").
	fmt.Fprintf(b, "    State: %-9s Revision: %s%s\n", p.State, p.Revision, old)
	if p.Replacing {
		b.WriteString("    Rolling restarting...\n")
	}
}

// lastUsed is when p was last used: "now" while it is in a request, as
// lastUsed (the end of its last request) would say a process streaming an
// answer for a minute was idle that long; else how long ago its last
// request ended, or "never".
func lastUsed(p ferryv1.ProcessInfo, now time.Time) string {
	switch {
	case p.Sessions > 0:
		return "now"
	case p.LastUsed != nil:
		return formatAgo(now.Sub(p.LastUsed.Time))
	}
	return "never"
}

func strategy(s ferryv1.RestartStrategy) string {
	if s == "" {
		return string(ferryv1.RestartRolling)
	}
	return string(s)
}

// kept is what an incomplete restart's Details adds when the errors it
// points at are not all of them: the rest are in the agent's log only.
func kept(in *Incomplete) string {
	if in.Failed <= len(in.Errors) {
		return ""
	}
	return fmt.Sprintf(", the first %d of %d", len(in.Errors), in.Failed)
}

// withOutput is what an incomplete restart's Details adds of its errors'
// output: nothing when none has any (a loader error met before the app
// wrote a line), so that the view never points at an empty output.
func withOutput(errs []ferryv1.SpawnError) string {
	n := 0
	for _, e := range errs {
		if e.Output != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return ""
	case len(errs) == 1:
		return ", with its output"
	case n == len(errs):
		return ", with each spawn's output"
	}
	return fmt.Sprintf(", with the output of %d of them", n)
}

// maxErrorsShown is how many of an incomplete restart's errors the view
// lists, one line each.
const maxErrorsShown = 3

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func writeIndented(b *strings.Builder, text, prefix string) {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return
	}
	for _, line := range strings.Split(text, "\n") {
		b.WriteString(prefix + line + "\n")
	}
}

func formatUptime(d time.Duration) string {
	d = d.Truncate(time.Second)
	h := int(d.Hours())
	m := int(d.Minutes()) % 60
	s := int(d.Seconds()) % 60
	return fmt.Sprintf("%dh %dm %ds", h, m, s)
}

func formatAgo(d time.Duration) string {
	switch {
	case d < time.Second:
		return "0s ago"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds ago", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %dm ago", int(d.Hours()), int(d.Minutes())%60)
}

// formatIn is how long until a time to come: "in 12s", "now" once due.
func formatIn(d time.Duration) string {
	if d < time.Second {
		return "now"
	}
	return "in " + d.Round(time.Second).String()
}

func formatBytes(n int64) string {
	switch {
	case n <= 0:
		return "-"
	case n < 1<<20:
		return fmt.Sprintf("%dK", n>>10)
	case n < 10<<30:
		return fmt.Sprintf("%dM", n>>20)
	}
	return fmt.Sprintf("%dG", n>>30)
}
