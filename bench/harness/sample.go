package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sampleInterval is how often worker processes are counted.
const sampleInterval = 20 * time.Millisecond

// procSample is the number of worker processes alive at a time.
type procSample struct {
	t time.Time
	n int
}

// procSampler counts, every sampleInterval, the children of parent whose
// executable is exe.
type procSampler struct {
	parent  int
	exe     string
	workers map[int]bool // children known to run exe
	samples []procSample
	stop    chan struct{}
	done    chan struct{}
}

// startSampler samples the workers of the process that parents worker.
func startSampler(worker int) (*procSampler, error) {
	parent, err := parentPID(worker)
	if err != nil {
		return nil, err
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", worker))
	if err != nil {
		return nil, err
	}
	s := &procSampler{parent: parent, exe: exe, workers: map[int]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s, nil
}

func (s *procSampler) loop() {
	defer close(s.done)
	t := time.NewTicker(sampleInterval)
	defer t.Stop()
	for {
		s.samples = append(s.samples, procSample{time.Now(), s.count()})
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// count reads the parent's children from every thread's children file.
// Only positive exe matches are cached: a child between fork and exec
// still shows the parent's executable.
func (s *procSampler) count() int {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", s.parent))
	if err != nil {
		return 0
	}
	n := 0
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", s.parent, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if !s.workers[pid] {
				exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
				if err != nil || exe != s.exe {
					continue
				}
				s.workers[pid] = true
			}
			if processAlive(pid) {
				n++
			}
		}
	}
	return n
}

// Stop ends sampling and returns the samples.
func (s *procSampler) Stop() []procSample {
	close(s.stop)
	<-s.done
	return s.samples
}

// procStats summarises samples against the run's trigger and window,
// given as offsets from start. window is zero when there was no trigger.
func procStats(samples []procSample, start time.Time, trigger, windowEnd time.Duration) *ProcStats {
	ps := &ProcStats{Samples: len(samples), MinInWindow: -1}
	for _, sm := range samples {
		off := sm.t.Sub(start)
		ps.Max = max(ps.Max, sm.n)
		switch {
		case trigger == 0 || off < trigger:
			ps.Before = max(ps.Before, sm.n)
		case off <= windowEnd:
			ps.InWindow = max(ps.InWindow, sm.n)
			if ps.MinInWindow < 0 || sm.n < ps.MinInWindow {
				ps.MinInWindow = sm.n
			}
		}
	}
	if ps.MinInWindow < 0 {
		ps.MinInWindow = 0
	}
	return ps
}

// writeProcsCSV writes t_ms,processes lines, t from start.
func writeProcsCSV(path string, samples []procSample, start time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "t_ms,processes")
	for _, sm := range samples {
		fmt.Fprintf(w, "%.1f,%d\n", float64(sm.t.Sub(start))/float64(time.Millisecond), sm.n)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// waitWorkers polls url until n distinct worker PIDs have answered (from
// X-Pid, else a decimal body), or timeout, or the server exits. Each round
// sends 2n concurrent requests on fresh connections, so every worker of a
// busy-first or least-busy router gets one; url should make each request
// last a while (the hello app's /slow?ms=100).
func waitWorkers(ctx context.Context, s *server, url string, n int, timeout time.Duration) ([]int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := defaultClient()
	seen := map[int]bool{}
	for {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 2 * n {
			wg.Go(func() {
				if pid := getPID(ctx, hc, url); pid > 0 {
					mu.Lock()
					seen[pid] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) >= n {
			pids := make([]int, 0, len(seen))
			for p := range seen {
				pids = append(pids, p)
			}
			return pids, nil
		}
		select {
		case <-s.Exited():
			return nil, s.exitError()
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %d of %d worker PIDs answered within %s (see %s)", s.spec.Name, len(seen), n, timeout, s.spec.Log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitHTTP polls url until it answers 2xx.
func waitHTTP(ctx context.Context, s *server, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := defaultClient()
	for {
		if getPID(ctx, hc, url) >= 0 {
			return nil
		}
		select {
		case <-s.Exited():
			return s.exitError()
		case <-ctx.Done():
			return fmt.Errorf("%s: %s did not answer within %s (see %s)", s.spec.Name, url, timeout, s.spec.Log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// defaultClient is a client on fresh connections, for readiness checks.
func defaultClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
}

// getPID GETs url and returns the PID that answered: 0 if none was given,
// -1 if the request failed or was not 2xx.
func getPID(ctx context.Context, hc *http.Client, url string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return -1
	}
	resp, err := hc.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil || resp.StatusCode/100 != 2 {
		return -1
	}
	v := resp.Header.Get("X-Pid")
	if v == "" {
		v = string(body)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0
	}
	return pid
}
