package proxy

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/pool"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&pool.UnavailableError{RetryAt: now.Add(32 * time.Second)}, "32"},
		{&pool.UnavailableError{RetryAt: now.Add(2100 * time.Millisecond)}, "3"}, // not before the try
		{&pool.UnavailableError{RetryAt: now.Add(-time.Second)}, "1"},            // the try is under way
		{fmt.Errorf("wrapped: %w", &pool.UnavailableError{RetryAt: now.Add(time.Minute)}), "60"},
		{&pool.UnavailableError{}, "5"},
		{pool.ErrUnavailable, "5"},
	} {
		if got := retryAfter(tc.err, now); got != tc.want {
			t.Errorf("retryAfter(%v): %s, want %s", tc.err, got, tc.want)
		}
		if !errors.Is(tc.err, pool.ErrUnavailable) {
			t.Errorf("%v is not ErrUnavailable", tc.err)
		}
	}
}
