package harness

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ferry-dev/ferry/bench/loadgen"
)

// wsgiParams are the baseline's steady test: the hello app with no delays,
// 4 processes, 16 clients for 10 s.
func (h *Harness) wsgiParams() Params {
	p := Params{Runs: h.opts.Runs, Duration: 10 * time.Second, Processes: 4, Clients: []int{16}}
	if h.opts.Smoke {
		p.Duration = 4 * time.Second
	}
	return p
}

func (h *Harness) wsgiScenario(ctx context.Context, dir string, sr *ScenarioResult) error {
	p := h.wsgiParams()
	sr.Params = p
	servers := h.filter(wsgiServers())
	configs := make([]ConfigResult, len(servers))
	for i, srv := range servers {
		configs[i] = ConfigResult{ID: srv.id, Server: srv.server, Clients: p.Clients[0]}
	}
	wrk := wrkPath()
	var errs []error
	for run := 1; run <= p.Runs; run++ {
		for i, srv := range servers {
			if ctx.Err() != nil {
				sr.Configs = configs
				return ctx.Err()
			}
			h.logf("wsgi %s run %d/%d", srv.id, run, p.Runs)
			// wrk runs once, on run 1's server, after loadgen.
			rr := h.wsgiRun(ctx, dir, srv, run, p, &configs[i], run == 1 && wrk != "")
			if rr.Error != "" {
				h.logf("  error: %s", rr.Error)
				errs = append(errs, fmt.Errorf("%s run %d: %s", srv.id, run, rr.Error))
			} else {
				h.logf("  rps %.0f, p99 %s, failed %d", rr.Report.RPS, rr.Report.Steady.P99, rr.Report.Failed)
			}
			configs[i].Runs = append(configs[i].Runs, rr)
		}
	}
	sr.Configs = configs
	return errors.Join(errs...)
}

func (h *Harness) wsgiRun(ctx context.Context, dir string, srv wsgiServer, run int, p Params, cfg *ConfigResult, withWrk bool) (rr RunResult) {
	runDir := filepath.Join(dir, srv.id, fmt.Sprintf("run-%d", run))
	rr = RunResult{Run: run, Dir: filepath.Join("wsgi", srv.id, fmt.Sprintf("run-%d", run))}
	r, err := h.newWSGIRun(runDir, 0, 0, p.Processes)
	if err != nil {
		rr.Error = err.Error()
		return rr
	}
	defer func() {
		if msg := r.cleanup(); msg != "" {
			rr.Leftovers = append(rr.Leftovers, msg)
		}
	}()
	s, _, spec, files, err := h.startWSGI(ctx, srv, r)
	ph := r.placeholders()
	if ph.recordServer(cfg, spec, files) {
		cfg.LoadCmd = ph.apply(shellQuote([]string{filepath.Join(h.opts.Tools, "loadgen"), "-c", fmt.Sprint(cfg.Clients),
			"-d", p.Duration.String(), "-url", r.url()}))
	}
	if err != nil {
		rr.Error = err.Error()
		return rr
	}
	res, err := loadgen.Run(ctx, loadgen.Config{URLs: []string{r.url()}, Clients: cfg.Clients, Duration: p.Duration})
	if err == nil && withWrk {
		cfg.Wrk = runWrk(ctx, r.url(), cfg.Clients, p.Duration)
		cfg.Wrk.Cmd = ph.apply(cfg.Wrk.Cmd)
	}
	rr.Leftovers = append(rr.Leftovers, s.Stop()...)
	if err != nil {
		rr.Error = err.Error()
		return rr
	}
	rep := res.Report()
	if err := writeJSON(filepath.Join(runDir, "report.json"), rep); err != nil {
		rr.Error = err.Error()
	}
	rep.Series = nil
	rr.Report = &rep
	return rr
}
