package pool

import "testing"

func TestMemoryBound(t *testing.T) {
	const mi = 1 << 20
	for _, c := range []struct {
		name            string
		limit, startRSS int64
		want            int64
	}{
		{"started below the limit", 64 * mi, 20 * mi, 64 * mi},
		{"started at the limit", 64 * mi, 64 * mi, 64 * mi},
		{"started above the limit: twice its start size", 2 * mi, 20 * mi, 40 * mi},
		{"started just above the limit", 30 * mi, 31 * mi, 62 * mi},
		{"start size unknown", 64 * mi, 0, 64 * mi},
	} {
		if got := memoryBound(c.limit, c.startRSS); got != c.want {
			t.Errorf("%s: memoryBound(%d, %d) = %d, want %d", c.name, c.limit, c.startRSS, got, c.want)
		}
	}
}
