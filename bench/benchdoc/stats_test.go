package benchdoc

import (
	"math"
	"testing"
)

func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		vals []float64
		want string
	}{
		{nil, "–"},
		{[]float64{2}, "2.0"},
		{[]float64{3, 1, 2}, "2.0 (1.0–3.0)"},
		{[]float64{1.01, 1.02, 1.04}, "1.0"},
		{[]float64{4, 1, 3, 2}, "2.5 (1.0–4.0)"},
		{[]float64{1, math.NaN(), 3}, "2.0 (1.0–3.0); none in 1 run(s)"},
		{[]float64{math.NaN()}, "–"},
	} {
		if got := spreadOf(tc.vals).format("%.1f"); got != tc.want {
			t.Errorf("spreadOf(%v) = %q, want %q", tc.vals, got, tc.want)
		}
	}
}
