package spawn

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"sync"
	"time"
)

// maxLine bounds one logged line; longer lines are cut.
const maxLine = 4096

// tail keeps the last lines a worker wrote (both streams, interleaved as
// they arrived), bounded in count and bytes, for spawn errors.
type tail struct {
	mu       sync.Mutex
	lines    []string
	maxLines int
	maxBytes int
	open     int           // streams still being read
	closed   chan struct{} // closed when both streams reached EOF
}

func newTail(maxLines, maxBytes int) *tail {
	return &tail{maxLines: maxLines, maxBytes: maxBytes, open: 2, closed: make(chan struct{})}
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.maxLines {
		t.lines = t.lines[len(t.lines)-t.maxLines:]
	}
}

// String returns the kept lines, newest last, trimmed from the front to
// maxBytes.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, start := 0, len(t.lines)
	for start > 0 && n+len(t.lines[start-1])+1 <= t.maxBytes {
		start--
		n += len(t.lines[start]) + 1
	}
	return strings.Join(t.lines[start:], "\n")
}

func (t *tail) streamDone() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.open--
	if t.open == 0 {
		close(t.closed)
	}
}

// waitClosed waits up to d for both streams to reach EOF.
func (t *tail) waitClosed(d time.Duration) {
	select {
	case <-t.closed:
	case <-time.After(d):
	}
}

// copyLines reads one of the worker's streams until EOF, keeping each line
// in the tail and logging it with the worker's pid, at most at its rate
// (out).
func (t *tail) copyLines(r io.ReadCloser, stream string, out *outputLog) {
	defer t.streamDone()
	defer r.Close()
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			text := strings.TrimRight(string(line), "\r\n")
			if errors.Is(err, bufio.ErrBufferFull) {
				// Cut an over-long line, drop the rest of it.
				text += " [line cut]"
				for errors.Is(err, bufio.ErrBufferFull) {
					_, err = br.ReadSlice('\n')
				}
			}
			t.add(text)
			out.line(stream, text)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
