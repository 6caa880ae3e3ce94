package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// Failure kinds, the values of Record.Kind. A successful request has Kind "".
const (
	KindStatus5xx   = "status-5xx"
	KindStatus4xx   = "status-4xx"
	KindStatusOther = "status-other" // 1xx or 3xx (redirects are not followed)
	KindTimeout     = "timeout"
	KindRefused     = "refused"
	KindReset       = "reset" // connection reset or broken pipe
	KindEOF         = "eof"   // connection closed before the response was complete
	KindOther       = "other"
)

func statusKind(status int) string {
	switch {
	case status >= 200 && status < 300:
		return ""
	case status >= 500:
		return KindStatus5xx
	case status >= 400:
		return KindStatus4xx
	default:
		return KindStatusOther
	}
}

// classify maps a transport or body-read error to a Kind. It checks wrapped
// errors first and falls back to the error text, because some transport
// errors (such as "http: server closed idle connection") wrap nothing.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return KindReset
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return KindEOF
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "connection refused"):
		return KindRefused
	case strings.Contains(s, "connection reset"), strings.Contains(s, "broken pipe"):
		return KindReset
	case strings.Contains(s, "timeout"):
		return KindTimeout
	case strings.Contains(s, "EOF"), strings.Contains(s, "server closed idle connection"):
		return KindEOF
	}
	return KindOther
}
