package cluster

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// runner is what a served ProcessPool needs of its pool: the real
// pool.Pool, or a simulated one for control-plane benchmarks.
type runner interface {
	Status() pool.Status
	Changed() <-chan struct{}
	Update(pool.Config)
	Stopping()
	Close(ctx context.Context)
}

// simulatedPool reports a pool of minProcesses ready processes without
// running any: a new revision "rolls" one process per step. It exists only
// so that the control-plane scale benchmark can run a thousand AppGroups on
// a 2-core machine (Options.SimulateWorkers, --simulate-workers); it never
// serves requests.
type simulatedPool struct {
	step time.Duration

	mu      sync.Mutex
	cfg     pool.Config
	procs   []ferryv1.ProcessInfo
	restart *ferryv1.RestartProgress
	changed chan struct{}
	stop    chan struct{}
	nextPID int32
}

func newSimulatedPool(cfg pool.Config, step time.Duration) *simulatedPool {
	p := &simulatedPool{step: step, cfg: cfg, changed: make(chan struct{}), stop: make(chan struct{}), nextPID: 100000}
	for range max(1, int(cfg.Template.Pool.MinProcesses)) {
		p.procs = append(p.procs, p.newProcLocked(cfg.Revision))
	}
	return p
}

func (p *simulatedPool) newProcLocked(revision string) ferryv1.ProcessInfo {
	p.nextPID++
	return ferryv1.ProcessInfo{PID: p.nextPID, Revision: revision, State: ferryv1.ProcessReady,
		StartedAt: metav1.Now()}
}

func (p *simulatedPool) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *simulatedPool) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

func (p *simulatedPool) Update(cfg pool.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.cfg.Revision
	p.cfg = cfg
	if cfg.Revision == old || p.restart != nil {
		return
	}
	p.restart = &ferryv1.RestartProgress{Revision: cfg.Revision, Total: int32(len(p.procs))}
	p.notifyLocked()
	go p.roll()
}

// roll replaces one process per step until all run the target revision.
func (p *simulatedPool) roll() {
	for {
		select {
		case <-p.stop:
			return
		case <-time.After(p.step):
		}
		p.mu.Lock()
		done := true
		for i := range p.procs {
			if p.procs[i].Revision != p.cfg.Revision {
				p.procs[i] = p.newProcLocked(p.cfg.Revision)
				p.restart.Done++
				done = false
				break
			}
		}
		if done {
			p.restart = nil
		}
		p.notifyLocked()
		p.mu.Unlock()
		if done {
			return
		}
	}
}

func (p *simulatedPool) Status() pool.Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := pool.Status{Name: p.cfg.Name, Revision: p.cfg.Revision, Strategy: p.cfg.Template.Restart.Strategy,
		MinProcesses: p.cfg.Template.Pool.MinProcesses, MaxProcesses: p.cfg.Template.Pool.MaxProcesses,
		Processes: append([]ferryv1.ProcessInfo(nil), p.procs...)}
	for _, pr := range p.procs {
		s.Counts.Total++
		s.Counts.Ready++
		if pr.Revision == p.cfg.Revision {
			s.Counts.Updated++
		}
	}
	if p.restart != nil {
		r := *p.restart
		s.Restart = &r
	}
	return s
}

// Stopping does nothing: a simulated roll spawns nothing to hold a stop up.
func (p *simulatedPool) Stopping() {}

func (p *simulatedPool) Close(context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
}
