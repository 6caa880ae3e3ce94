package pool

import "testing"

// TestExitLogLine: a worker's death is logged with whether a request was at
// it, each time, and what the pool made of it; a stop the pool made is not
// logged here; one nothing was made of (its pool closes, or its revision
// is no longer spawned: watchExit passes neither ofRequest nor counted)
// says only where it died. A death taken as its request's says so, not "replacing it": a
// pool above minProcesses with no request queued replaces nobody.
func TestExitLogLine(t *testing.T) {
	for _, tc := range []struct {
		name                                      string
		unexpected, inRequest, ofRequest, counted bool
		want                                      string
	}{
		{name: "stopped by the pool", want: ""},
		{name: "a death between requests", unexpected: true, want: "Worker exited unexpectedly"},
		{name: "a young death between requests, counted", unexpected: true, counted: true,
			want: "Worker exited unexpectedly"},
		{name: "the request's (the first of a run, or of a lasted revision)", unexpected: true, inRequest: true, ofRequest: true,
			want: "Worker exited while handling a request; taken as the request's, not counted as a crash of its app"},
		{name: "in a request, counted as the app's (the second of a run)", unexpected: true, inRequest: true, counted: true,
			want: "Worker exited while handling a request; counted as a crash of its app, not of the request"},
		{name: "in a request, neither (a pool that closes, or a revision no longer spawned)", unexpected: true, inRequest: true,
			want: "Worker exited while handling a request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitLogLine(tc.unexpected, tc.inRequest, tc.ofRequest, tc.counted); got != tc.want {
				t.Errorf("exitLogLine = %q, want %q", got, tc.want)
			}
		})
	}
}
