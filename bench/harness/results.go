package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-dev/ferry/bench/loadgen"
)

// ScenarioFile is the name of a scenario's summary in its results directory.
const ScenarioFile = "scenario.json"

// ScenarioResult is everything one scenario measured, as written to
// RESULTS/SCENARIO/scenario.json.
type ScenarioResult struct {
	Scenario string `json:"scenario"`
	// Smoke marks short runs made to check the scripts: not for publishing.
	Smoke    bool      `json:"smoke,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Machine is read when the scenario starts; LoadAfter is the load
	// average when it finished.
	Machine   Machine `json:"machine"`
	LoadAfter string  `json:"load_after"`
	// Params are the scenario's load parameters (clients, durations, delays).
	Params  Params         `json:"params"`
	Configs []ConfigResult `json:"configs"`
	// ControlPlane is the control-plane scale scenario's result.
	ControlPlane *ControlPlaneResult `json:"controlplane,omitempty"`
}

// Params are a scenario's load parameters.
type Params struct {
	Runs           int           `json:"runs"`
	Duration       time.Duration `json:"duration_ns"`
	TriggerAt      time.Duration `json:"trigger_at_ns,omitempty"`
	BootDelay      float64       `json:"boot_delay_s"`
	RequestDelayMS int           `json:"request_delay_ms"`
	Processes      int           `json:"processes"`
	Clients        []int         `json:"clients"`
}

// ConfigResult is one configuration (a server and, for restarts, a restart
// method, at one concurrency) and its runs.
type ConfigResult struct {
	// ID names the configuration's directory and plot (restart-ID.png).
	ID string `json:"id"`
	// Server and Method say what ran, for tables.
	Server string `json:"server"`
	Method string `json:"method,omitempty"`
	// Target groups proxy configurations: direct, ferry, nginx.
	Target  string `json:"target,omitempty"`
	Clients int    `json:"clients"`
	// Commands are the exact command lines, with RUN for the run's
	// directory and PORT for the port the kernel gave.
	ServerCmd  string `json:"server_cmd"`
	TriggerCmd string `json:"trigger_cmd,omitempty"`
	LoadCmd    string `json:"load_cmd"`
	// Files are configuration files written for the server (AppGroup YAML,
	// nginx.conf), with the same placeholders.
	Files map[string]string `json:"files,omitempty"`
	Runs  []RunResult       `json:"runs"`
	// PlotRun is the index in Runs of the run to plot: the median by
	// restart-window max latency.
	PlotRun int `json:"plot_run"`
	// Wrk is one wrk run, when wrk is installed (proxy, wsgi).
	Wrk *WrkResult `json:"wrk,omitempty"`
}

// RunResult is one run.
type RunResult struct {
	Run int `json:"run"`
	// Dir is the run's directory, relative to the results directory.
	Dir string `json:"dir"`
	// Report is loadgen's report, without its per-second series (it is in
	// DIR/report.json).
	Report *loadgen.Report `json:"report,omitempty"`
	// SteadyGap is the longest gap before the trigger: the machine's noise
	// floor, against which the restart window's gap reads.
	SteadyGap time.Duration `json:"steady_gap_ns,omitempty"`
	// Procs counts worker processes alive, sampled from /proc.
	Procs *ProcStats `json:"procs,omitempty"`
	// SpawnSeconds are how long the restart's spawns took, from the Ferry
	// agent's log.
	SpawnSeconds []float64 `json:"spawn_seconds,omitempty"`
	// UpstreamConns is how many connections the upstream accepted during
	// the run (proxy scenario): a proxy that reuses its connections opens
	// few, one that dials per request opens about one per request; -1 when
	// the upstream could not tell.
	UpstreamConns int `json:"upstream_conns,omitempty"`
	// CPU is the CPU time the proxy and the upstream used (proxy scenario).
	CPU *CPUStats `json:"cpu,omitempty"`
	// Leftovers are processes the stop sweep had to kill.
	Leftovers []string `json:"leftovers,omitempty"`
	// Error says why the run produced no report, or what went wrong in it.
	Error string `json:"error,omitempty"`
}

// ProcStats summarises the worker-process samples of a run.
type ProcStats struct {
	Samples int `json:"samples"`
	// Before is the most processes alive before the trigger; Max the most
	// over the run; InWindow the most within the restart window.
	Before   int `json:"before"`
	Max      int `json:"max"`
	InWindow int `json:"in_window"`
	// MinInWindow is the fewest alive within the restart window.
	MinInWindow int `json:"min_in_window"`
}

// WrkResult is one wrk run.
type WrkResult struct {
	Cmd      string        `json:"cmd"`
	RPS      float64       `json:"rps"`
	Requests int           `json:"requests"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	// Errors counts wrk's socket errors (connect, read, write, timeout)
	// and non-2xx/3xx responses.
	Errors int    `json:"errors"`
	Raw    string `json:"raw"`
	Error  string `json:"error,omitempty"`
}

// LoadScenario reads RESULTS/name/scenario.json.
func LoadScenario(results, name string) (*ScenarioResult, error) {
	data, err := os.ReadFile(filepath.Join(results, name, ScenarioFile))
	if err != nil {
		return nil, err
	}
	var sr ScenarioResult
	if err := json.Unmarshal(data, &sr); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &sr, nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
