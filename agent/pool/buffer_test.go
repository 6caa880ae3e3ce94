package pool

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

func TestBufferLimits(t *testing.T) {
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	cases := []struct {
		name              string
		spec              ferryv1.ProxySpec
		request, response int64
	}{
		{"defaults (a template the API server did not default)", ferryv1.ProxySpec{},
			DefaultRequestBufferLimit, DefaultResponseBufferLimit},
		{"request buffering on", ferryv1.ProxySpec{RequestBuffering: ptr.To(true)},
			DefaultRequestBufferLimit, DefaultResponseBufferLimit},
		{"on with a limit", ferryv1.ProxySpec{RequestBuffering: ptr.To(true), RequestBufferLimit: q("1Mi")},
			1 << 20, DefaultResponseBufferLimit},
		{"a limit alone", ferryv1.ProxySpec{RequestBufferLimit: q("1k")}, 1000, DefaultResponseBufferLimit},
		{"request buffering off", ferryv1.ProxySpec{RequestBuffering: ptr.To(false), RequestBufferLimit: q("1Mi")},
			0, DefaultResponseBufferLimit},
		{"a fraction of a byte still buffers", ferryv1.ProxySpec{RequestBufferLimit: q("100m")}, 1, DefaultResponseBufferLimit},
		{"a response limit", ferryv1.ProxySpec{ResponseBufferLimit: q("256Ki")}, DefaultRequestBufferLimit, 256 << 10},
		{"response buffering off", ferryv1.ProxySpec{ResponseBufferLimit: q("0")}, DefaultRequestBufferLimit, 0},
	}
	for _, c := range cases {
		if got := requestBufferLimit(c.spec); got != c.request {
			t.Errorf("%s: request %d, want %d", c.name, got, c.request)
		}
		if got := responseBufferLimit(c.spec); got != c.response {
			t.Errorf("%s: response %d, want %d", c.name, got, c.response)
		}
	}
}
