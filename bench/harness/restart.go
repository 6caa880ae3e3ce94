package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/bench/loadgen"
)

// restartParams are the baseline's: 4 workers, BOOT_DELAY 2 s,
// REQUEST_DELAY_MS 5, 16 clients for 25 s, restart at 8 s.
func (h *Harness) restartParams() Params {
	p := Params{Runs: h.opts.Runs, Duration: 25 * time.Second, TriggerAt: 8 * time.Second,
		BootDelay: 2, RequestDelayMS: 5, Processes: 4, Clients: []int{16}}
	if h.opts.Smoke {
		p.Duration, p.TriggerAt, p.BootDelay = 12*time.Second, 3*time.Second, 1
	}
	return p
}

func (h *Harness) restartScenario(ctx context.Context, dir string, sr *ScenarioResult) error {
	p := h.restartParams()
	sr.Params = p
	servers := h.filter(restartServers())
	configs := make([]ConfigResult, len(servers))
	for i, srv := range servers {
		clients := p.Clients[0]
		if srv.clients > 0 {
			clients = srv.clients
		}
		configs[i] = ConfigResult{ID: srv.id, Server: srv.server, Method: srv.method, Clients: clients}
	}
	// Runs interleave (run 1 of every configuration, then run 2, ...) so
	// that a noisy minute on the shared machine does not hit one peer only.
	for run := 1; run <= p.Runs; run++ {
		for i, srv := range servers {
			if ctx.Err() != nil {
				sr.Configs = configs
				return ctx.Err()
			}
			h.logf("restart %s run %d/%d", srv.id, run, p.Runs)
			rr := h.restartRun(ctx, dir, srv, run, p, &configs[i])
			if rr.Error != "" {
				h.logf("  error: %s", rr.Error)
			} else if rep := rr.Report; rep != nil && rep.Restart != nil {
				h.logf("  failed %d, longest gap %.3fs, window p99 %s max %s, restart %.1fs, procs max %d",
					rep.Failed, rep.LongestGap.Length.Seconds(), rep.Restart.Window.P99, rep.Restart.Window.Max,
					rep.Restart.Duration.Seconds(), rr.Procs.InWindow)
			}
			configs[i].Runs = append(configs[i].Runs, rr)
		}
	}
	var errs []error
	for i := range configs {
		configs[i].PlotRun = medianRun(configs[i].Runs)
		for _, rr := range configs[i].Runs {
			if rr.Error != "" {
				errs = append(errs, fmt.Errorf("%s run %d: %s", configs[i].ID, rr.Run, rr.Error))
			}
		}
	}
	sr.Configs = configs
	return errors.Join(errs...)
}

// medianRun picks the run with the median restart-window max latency (the
// one to plot); -1 if no run has a report.
func medianRun(runs []RunResult) int {
	var idx []int
	for i, rr := range runs {
		if rr.Report != nil && rr.Report.Restart != nil {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return -1
	}
	slices.SortFunc(idx, func(a, b int) int {
		return int(runs[a].Report.Restart.Window.Max - runs[b].Report.Restart.Window.Max)
	})
	return idx[(len(idx)-1)/2]
}

func (h *Harness) restartRun(ctx context.Context, dir string, srv wsgiServer, run int, p Params, cfg *ConfigResult) (rr RunResult) {
	rel := filepath.Join("restart", srv.id, fmt.Sprintf("run-%d", run))
	runDir := filepath.Join(dir, srv.id, fmt.Sprintf("run-%d", run))
	rr = RunResult{Run: run, Dir: rel}
	r, err := h.newWSGIRun(runDir, p.BootDelay, p.RequestDelayMS, p.Processes)
	if err != nil {
		rr.Error = err.Error()
		return rr
	}
	defer func() {
		if msg := r.cleanup(); msg != "" {
			rr.Leftovers = append(rr.Leftovers, msg)
		}
	}()
	s, pids, spec, files, err := h.startWSGI(ctx, srv, r)
	ph := r.placeholders()
	ph.recordServer(cfg, spec, files)
	if err != nil {
		rr.Error = err.Error()
		return rr
	}
	sampler, err := startSampler(pids[0])
	if err != nil {
		rr.Leftovers = s.Stop()
		rr.Error = "sampling workers: " + err.Error()
		return rr
	}
	trigger := srv.trigger(r, s)
	ph.pid = s.PID()
	if cfg.TriggerCmd == "" {
		cfg.TriggerCmd = ph.apply(trigger)
		cfg.LoadCmd = ph.apply(shellQuote([]string{filepath.Join(h.opts.Tools, "loadgen"), "-c", fmt.Sprint(cfg.Clients),
			"-d", p.Duration.String(), "-url", r.url(), "-trigger-at", p.TriggerAt.String(), "-trigger", trigger}))
	}
	trigLog, err := os.Create(filepath.Join(runDir, "trigger.log"))
	if err != nil {
		sampler.Stop()
		rr.Leftovers = s.Stop()
		rr.Error = err.Error()
		return rr
	}
	defer trigLog.Close()
	res, err := loadgen.Run(ctx, loadgen.Config{
		URLs: []string{r.url()}, Clients: cfg.Clients, Duration: p.Duration,
		TriggerAt: p.TriggerAt, Trigger: loadgen.ShellTrigger(trigger, trigLog),
	})
	samples := sampler.Stop()
	rr.Leftovers = append(rr.Leftovers, s.Stop()...)
	if err != nil {
		rr.Error = err.Error()
		return rr
	}
	rep := res.Report()
	var trigAt, windowEnd time.Duration
	if rep.Restart != nil {
		trigAt, windowEnd = rep.Restart.TriggerStart, rep.Restart.WindowEnd
	}
	rr.Procs = procStats(samples, res.Start, trigAt, windowEnd)
	rr.SteadyGap = steadyGap(res, trigAt)
	if strings.HasPrefix(srv.id, "ferry") {
		rr.SpawnSeconds = ferrySpawnSeconds(filepath.Join(runDir, "server.log"), p.Processes)
	}
	if err := h.writeRunFiles(runDir, res, rep, samples); err != nil {
		rr.Error = err.Error()
	}
	rep.Series = nil
	rr.Report = &rep
	if rep.Restart == nil {
		rr.Error = "the trigger did not run"
	} else if rep.Restart.TriggerErr != "" {
		rr.Error = "trigger: " + rep.Restart.TriggerErr
	}
	return rr
}

// steadyGap is the longest gap with no successful completion in [0, until).
func steadyGap(res *loadgen.Result, until time.Duration) time.Duration {
	if until <= 0 {
		return 0
	}
	var ends []time.Duration
	for _, rec := range res.Records {
		if rec.OK() && rec.End < until {
			ends = append(ends, rec.End)
		}
	}
	if len(ends) == 0 {
		return until
	}
	slices.Sort(ends)
	// From the first completion: the ramp-up is not a gap.
	return loadgen.LongestGap(ends, ends[0], until).Length
}

// writeRunFiles writes report.json, records.csv and procs.csv.
func (h *Harness) writeRunFiles(runDir string, res *loadgen.Result, rep loadgen.Report, samples []procSample) error {
	if err := writeJSON(filepath.Join(runDir, "report.json"), rep); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(runDir, "records.csv"))
	if err != nil {
		return err
	}
	if err := res.WriteCSV(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if samples != nil {
		return writeProcsCSV(filepath.Join(runDir, "procs.csv"), samples, res.Start)
	}
	return nil
}

// ferrySpawnSeconds reads the agent's "Spawned worker" log lines and
// returns the durations of the spawns after the first initial ones.
func ferrySpawnSeconds(logPath string, initial int) []float64 {
	f, err := os.Open(logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []float64
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg      string          `json:"msg"`
			Duration json.RawMessage `json:"duration"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "Spawned worker" {
			continue
		}
		d, ok := logSeconds(line.Duration)
		if n++; n > initial && ok {
			out = append(out, d)
		}
	}
	return out
}

// logSeconds reads a duration the agent logged: a Go duration string
// ("2.203s", as the agent logs it) or a number of seconds (as zap logs a
// time.Duration, which older agents did).
func logSeconds(v json.RawMessage) (float64, bool) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		d, err := time.ParseDuration(s)
		return d.Seconds(), err == nil
	}
	var f float64
	return f, json.Unmarshal(v, &f) == nil
}
