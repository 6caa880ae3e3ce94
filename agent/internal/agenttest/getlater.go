package agenttest

import (
	"io"
	"net/http"
)

// Answer is what a GET got: its status, header and body, or the error.
type Answer struct {
	Code   int
	Header http.Header
	Body   string
	Err    error
}

// GetLater sends GET url in the background, for a test that acts while
// the request is in flight; the answer comes on the channel.
func GetLater(url string) <-chan Answer {
	out := make(chan Answer, 1)
	go func() {
		resp, err := http.Get(url) //nolint:noctx // a test's request, awaited on the channel
		if err != nil {
			out <- Answer{Err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		out <- Answer{Code: resp.StatusCode, Header: resp.Header, Body: string(body), Err: err}
	}()
	return out
}
