package proxy

import "testing"

// TestEncodingSpotter: a line that begins "Transfer-Encoding:", in any
// case and after a CRLF or a bare LF, is spotted however the reads split
// the bytes, also as an obs-fold (net/http takes it as the line before's,
// a balancer in front may not); a field that only contains the words is
// not.
func TestEncodingSpotter(t *testing.T) {
	for _, tc := range []struct {
		in     string
		seen   bool
		folded bool
	}{
		{"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", true, false},
		{"POST / HTTP/1.0\nHost: x\ntRANSFER-eNCODING:chunked\n\n", true, false},
		{"POST / HTTP/1.0\r\nHost: x\r\n\nTransfer-Encoding: chunked\r\n\r\n", true, false},
		{"POST / HTTP/1.0\r\nHost: x\r\nX-Transfer-Encoding: chunked\r\n\r\n", false, false},
		{"POST / HTTP/1.0\r\nHost: x\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n", true, true},
		{"POST / HTTP/1.0\r\nHost: x\r\nX-A: a\n\t \ttransfer-encoding:chunked\n\n", true, true},
		{"POST / HTTP/1.0\r\nHost: x\r\nX-A: a\r\n X Transfer-Encoding: chunked\r\n\r\n", false, false},
		{"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encodings: chunked\r\n\r\n", false, false},
		{"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding\r\n\r\n", false, false},
		{"GET / HTTP/1.0\r\nHost: x\r\n\n\ntransfer-encoding:\r\n", true, false},
		{"POST / HTTP/1.1\r\nX-A: a\r\n XTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", true, false},
	} {
		for cut := range len(tc.in) { // two reads, split anywhere
			var s encodingSpotter
			s.scan([]byte(tc.in[:cut]))
			s.scan([]byte(tc.in[cut:]))
			if s.seen.Load() != tc.seen || s.folded.Load() != tc.folded {
				t.Errorf("%q read as %q and %q: seen %t, folded %t; want %t, %t", tc.in, tc.in[:cut], tc.in[cut:],
					s.seen.Load(), s.folded.Load(), tc.seen, tc.folded)
			}
		}
		var s encodingSpotter // a byte a read
		for i := range len(tc.in) {
			s.scan([]byte{tc.in[i]})
		}
		if s.seen.Load() != tc.seen || s.folded.Load() != tc.folded {
			t.Errorf("%q read a byte at a time: seen %t, folded %t; want %t, %t", tc.in, s.seen.Load(), s.folded.Load(), tc.seen, tc.folded)
		}
	}
}
