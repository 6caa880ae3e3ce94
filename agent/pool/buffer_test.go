package pool

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

func TestRequestBufferLimit(t *testing.T) {
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	cases := []struct {
		name string
		spec ferryv1.ProxySpec
		want int64
	}{
		{"defaults (a template the API server did not default)", ferryv1.ProxySpec{}, DefaultRequestBufferLimit},
		{"on", ferryv1.ProxySpec{RequestBuffering: ptr.To(true)}, DefaultRequestBufferLimit},
		{"on with a limit", ferryv1.ProxySpec{RequestBuffering: ptr.To(true), RequestBufferLimit: q("1Mi")}, 1 << 20},
		{"a limit alone", ferryv1.ProxySpec{RequestBufferLimit: q("1k")}, 1000},
		{"off", ferryv1.ProxySpec{RequestBuffering: ptr.To(false), RequestBufferLimit: q("1Mi")}, 0},
		{"a fraction of a byte still buffers", ferryv1.ProxySpec{RequestBufferLimit: q("100m")}, 1},
	}
	for _, c := range cases {
		if got := requestBufferLimit(c.spec); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestResponseBufferLimit(t *testing.T) {
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	for spec, want := range map[*ferryv1.ProxySpec]int64{
		{}:                                DefaultResponseBufferLimit,
		{ResponseBufferLimit: q("256Ki")}: 256 << 10,
		{ResponseBufferLimit: q("0")}:     0,
	} {
		if got := responseBufferLimit(*spec); got != want {
			t.Errorf("%+v: %d, want %d", spec, got, want)
		}
	}
}
