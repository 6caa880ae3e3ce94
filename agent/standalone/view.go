package standalone

import "github.com/ferry-dev/ferry/agent/statusview"

// View turns the admin API's status into the passenger-status view.
func View(st StatusResponse) []statusview.Pool {
	out := make([]statusview.Pool, 0, len(st.Apps))
	for _, a := range st.Apps {
		p := a.Pool
		out = append(out, statusview.Pool{
			Title: a.Name, Root: a.Root, Listen: a.Listen, Revision: p.Revision, Strategy: p.Strategy,
			MinProcesses: p.MinProcesses, MaxProcesses: p.MaxProcesses, QueueLength: p.QueueLength,
			Processes: p.Processes, Restart: p.Restart, Resisting: p.Resisting, ScalingError: p.ScalingError,
			LastSpawnError: p.LastSpawnError,
		})
	}
	return out
}
