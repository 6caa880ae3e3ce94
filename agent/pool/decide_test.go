package pool

import (
	"reflect"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	idleSince := func(d time.Duration) time.Time { return now.Add(-d) }
	base := view{now: now, min: 2, max: 4, ready: 2, idle: 5 * time.Minute}
	with := func(f func(*view)) view { v := base; f(&v); return v }
	none := decision{recycle: -1, shutdown: -1}

	cases := []struct {
		name string
		v    view
		want decision
	}{
		{"steady", base, none},
		{"below min spawns the difference", with(func(v *view) { v.ready = 0 }), decision{spawn: 2, recycle: -1, shutdown: -1}},
		{"spawning counts toward min", with(func(v *view) { v.ready = 1; v.spawning = 1 }), none},
		{"queued spawns one more", with(func(v *view) { v.queued = 3 }), decision{spawn: 1, recycle: -1, shutdown: -1}},
		{"queued waits for the spawn in flight", with(func(v *view) { v.queued = 3; v.spawning = 1 }), none},
		{"queued at max spawns nothing", with(func(v *view) { v.queued = 3; v.ready = 4 }), none},
		{"backoff blocks spawning", with(func(v *view) { v.ready = 0; v.backoff = now.Add(time.Second) }), none},
		{"backoff over", with(func(v *view) { v.ready = 1; v.backoff = now }), decision{spawn: 1, recycle: -1, shutdown: -1}},
		{"frozen spawns nothing for traffic", with(func(v *view) { v.frozen = true; v.queued = 5 }), none},
		{"frozen replaces exited workers up to min", with(func(v *view) { v.frozen = true; v.ready = 0; v.queued = 5 }),
			decision{spawn: 2, recycle: -1, shutdown: -1}},
		{"frozen and empty, min 0: one for waiting requests", with(func(v *view) { v.frozen, v.min, v.ready, v.queued = true, 0, 0, 1 }),
			decision{spawn: 1, recycle: -1, shutdown: -1}},
		{"frozen and empty, min 0, nothing waits", with(func(v *view) { v.frozen, v.min, v.ready = true, 0, 0 }), none},
		{"frozen: no replacement during a backoff", with(func(v *view) { v.frozen, v.ready, v.backoff = true, 0, now.Add(time.Second) }), none},
		{"blocking restart pauses everything", with(func(v *view) { v.paused, v.restart, v.ready = true, true, 0 }), none},
		{"restart keeps min only", with(func(v *view) { v.restart = true; v.queued = 5 }), none},
		{"restart refills min", with(func(v *view) { v.restart = true; v.ready = 1 }), decision{spawn: 1, recycle: -1, shutdown: -1}},
		{"idle above min stops oldest idle", with(func(v *view) {
			v.ready = 4
			v.workers = []workerView{
				{id: 1, lastUsed: idleSince(time.Second)},
				{id: 2, lastUsed: idleSince(6 * time.Minute)},
				{id: 3, lastUsed: idleSince(10 * time.Minute)},
				{id: 4, lastUsed: idleSince(7 * time.Minute)},
			}
		}), decision{stop: []int{3, 4}, recycle: -1, shutdown: -1}},
		// As Passenger's minimum instances: lowering min stops nothing at
		// once; the processes above it go as each turns idleTimeout idle.
		// decide keeps no earlier min: a pool whose min was lowered (4 to
		// 2) is one with more ready than min, as these two rows.
		{"above min, none idleTimeout idle: none stops", with(func(v *view) {
			v.ready = 4
			v.workers = []workerView{
				{id: 1, lastUsed: idleSince(time.Second)},
				{id: 2, lastUsed: idleSince(40 * time.Second)},
				{id: 3, lastUsed: idleSince(4 * time.Minute)},
				{id: 4, lastUsed: idleSince(time.Minute)},
			}
		}), none},
		{"above min, one just idleTimeout idle: only it stops", with(func(v *view) {
			v.ready = 4
			v.workers = []workerView{
				{id: 1, lastUsed: idleSince(time.Second)},
				{id: 2, lastUsed: idleSince(40 * time.Second)},
				{id: 3, lastUsed: idleSince(5 * time.Minute)},
				{id: 4, lastUsed: idleSince(time.Minute)},
			}
		}), decision{stop: []int{3}, recycle: -1, shutdown: -1}},
		{"busy workers are not idle", with(func(v *view) {
			v.ready = 3
			v.workers = []workerView{{id: 1, sessions: 1, lastUsed: idleSince(time.Hour)}, {id: 2, lastUsed: idleSince(time.Hour)}}
		}), decision{stop: []int{2}, recycle: -1, shutdown: -1}},
		{"no idle stop while requests queue", with(func(v *view) {
			v.ready, v.queued = 4, 1
			v.workers = []workerView{{id: 1, lastUsed: idleSince(time.Hour)}}
		}), none},
		{"no idle stop while frozen", with(func(v *view) {
			v.ready, v.frozen = 4, true
			v.workers = []workerView{{id: 1, lastUsed: idleSince(time.Hour)}}
		}), none},
		{"no idle stop while restarting", with(func(v *view) {
			v.ready, v.restart = 4, true
			v.workers = []workerView{{id: 1, lastUsed: idleSince(time.Hour)}}
		}), none},
		{"recycle one flagged worker", with(func(v *view) {
			v.workers = []workerView{{id: 1}, {id: 2, recycle: recycleMaxRequests}, {id: 3, recycle: recycleMemory}}
		}), decision{recycle: 2, shutdown: -1}},
		{"no recycle during a backoff", with(func(v *view) {
			v.backoff = now.Add(time.Second)
			v.workers = []workerView{{id: 2, recycle: recycleMemory}}
		}), none},
		{"one recycle at a time", with(func(v *view) {
			v.recycling = true
			v.workers = []workerView{{id: 2, recycle: recycleMaxRequests}}
		}), none},
		{"above max stops the excess, least busy and longest idle first", with(func(v *view) {
			v.ready, v.max = 5, 3
			v.workers = []workerView{
				{id: 1, sessions: 1, lastUsed: idleSince(time.Hour)},
				{id: 2, lastUsed: idleSince(time.Second)},
				{id: 3, lastUsed: idleSince(time.Minute)},
				{id: 4, sessions: 2, lastUsed: idleSince(2 * time.Hour)},
				{id: 5, lastUsed: idleSince(2 * time.Second)},
			}
		}), decision{stop: []int{3, 5}, recycle: -1, shutdown: -1}},
		{"a recycle's surge is not an excess", with(func(v *view) {
			v.ready, v.max, v.recycling = 3, 2, true
			v.workers = []workerView{{id: 1, recycle: recycleMaxRequests, replacing: true}, {id: 2}, {id: 3}}
		}), none},
		{"a worker being replaced is neither surplus nor an idle victim", with(func(v *view) {
			v.ready, v.recycling = 3, true
			v.workers = []workerView{
				{id: 1, recycle: recycleMaxRequests, replacing: true, lastUsed: idleSince(time.Hour)},
				{id: 2, lastUsed: idleSince(time.Hour)},
				{id: 3},
			}
		}), none},
		{"above max with a recycle under way stops the excess of those staying", with(func(v *view) {
			v.ready, v.max, v.recycling = 4, 2, true
			v.workers = []workerView{{id: 1, replacing: true}, {id: 2, sessions: 1}, {id: 3}, {id: 4, sessions: 1}}
		}), decision{stop: []int{3}, recycle: -1, shutdown: -1}},
		{"a failed replacement spawn starts no other: restart", with(func(v *view) {
			v.restart, v.max = true, 2
			v.workers = []workerView{{id: 1, replacing: true}, {id: 2}}
		}), none},
		{"a failed replacement spawn starts no other: recycle", with(func(v *view) {
			v.recycling = true
			v.workers = []workerView{{id: 1, recycle: recycleMaxRequests, replacing: true}, {id: 2}}
		}), none},
		{"queued during a recycle: no spawn past max", with(func(v *view) {
			v.ready, v.max, v.queued, v.recycling = 3, 3, 2, true
			v.workers = []workerView{{id: 1, replacing: true, sessions: 1}, {id: 2, sessions: 1}, {id: 3, sessions: 1}}
		}), none},
		{"above max while restarting: the restart's surge", with(func(v *view) {
			v.ready, v.restart = 5, true
			v.workers = []workerView{{id: 1}, {id: 2}, {id: 3}, {id: 4}, {id: 5}}
		}), none},
		{"above max while frozen: nothing stops", with(func(v *view) {
			v.ready, v.frozen = 5, true
			v.workers = []workerView{{id: 1}, {id: 2}, {id: 3}, {id: 4}, {id: 5}}
		}), none},
		{"frozen: memory limit shuts down without replacement", with(func(v *view) {
			v.frozen = true
			v.workers = []workerView{{id: 1, recycle: recycleMaxRequests}, {id: 2, recycle: recycleMemory}}
		}), decision{recycle: -1, shutdown: 2}},
		{"frozen: never the last ready worker", with(func(v *view) {
			v.frozen, v.ready, v.min = true, 1, 1
			v.workers = []workerView{{id: 2, recycle: recycleMemory}}
		}), none},
	}
	for _, tc := range cases {
		got := decide(tc.v)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: decide = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestBackoffAfter(t *testing.T) {
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, time.Minute, time.Minute, time.Minute}
	for n, w := range want {
		if got := backoffAfter(n); got != w {
			t.Errorf("backoffAfter(%d) = %s, want %s", n, got, w)
		}
	}
}
