package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// These tests use real HTTP on loopback. They assert no timing beyond loose
// sanity bounds: the machine has 2 shared cores.

func run(t *testing.T, cfg Config) (*Result, Report) {
	t.Helper()
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res, res.Report()
}

func pidServer(t *testing.T, pid int, inHeader bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inHeader {
			w.Header().Set("X-Pid", strconv.Itoa(pid))
			io.WriteString(w, "hello, this body is not a pid")
			return
		}
		fmt.Fprintf(w, "%d\n", pid)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPIDFromHeader(t *testing.T) {
	srv := pidServer(t, 4242, true)
	res, rep := run(t, Config{URLs: []string{srv.URL}, Clients: 2, Duration: 150 * time.Millisecond})
	if len(res.Records) == 0 {
		t.Fatal("no records")
	}
	for _, rec := range res.Records {
		if !rec.OK() || rec.PID != 4242 || rec.Status != 200 {
			t.Fatalf("record %+v, want ok from pid 4242", rec)
		}
	}
	if rep.Failed != 0 || len(rep.PIDs) != 1 || rep.PIDs[0] != 4242 {
		t.Errorf("report: failed %d, pids %v", rep.Failed, rep.PIDs)
	}
	// One keep-alive connection per client.
	if rep.NewConns != 2 {
		t.Errorf("NewConns = %d, want 2 (one per client)", rep.NewConns)
	}
}

func TestPIDCustomHeader(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Worker-Pid", " 77 ")
		w.Header().Set("X-Pid", "1")
	}))
	t.Cleanup(srv.Close)
	res, _ := run(t, Config{URLs: []string{srv.URL}, Clients: 1, Duration: 50 * time.Millisecond, PIDHeader: "x-worker-pid"})
	if len(res.Records) == 0 || res.Records[0].PID != 77 {
		t.Fatalf("records %v, want pid 77 from X-Worker-Pid", res.Records[:min(len(res.Records), 1)])
	}
}

func TestPIDFromBody(t *testing.T) {
	srv := pidServer(t, 5151, false)
	res, _ := run(t, Config{URLs: []string{srv.URL}, Clients: 2, Duration: 150 * time.Millisecond})
	if len(res.Records) == 0 {
		t.Fatal("no records")
	}
	for _, rec := range res.Records {
		if !rec.OK() || rec.PID != 5151 {
			t.Fatalf("record %+v, want ok from pid 5151", rec)
		}
	}
}

func TestPIDUnknownBody(t *testing.T) {
	long := strings.Repeat("x", 100000)
	for _, body := range []string{"", "12a", "-5", long} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, body)
		}))
		res, rep := run(t, Config{URLs: []string{srv.URL}, Clients: 1, Duration: 50 * time.Millisecond})
		srv.Close()
		if len(res.Records) == 0 || res.Records[0].PID != 0 || !res.Records[0].OK() {
			t.Errorf("body %.10q: records %v, want ok with pid 0", body, res.Records[:min(len(res.Records), 1)])
		}
		// The body is drained, so the connection is reused.
		if rep.NewConns != 1 {
			t.Errorf("body %.10q: NewConns = %d, want 1", body, rep.NewConns)
		}
	}
}

func TestParsePID(t *testing.T) {
	tests := map[string]int{
		"1234": 1234, " 1234\n": 1234, "\t7\r\n": 7, "": 0, " ": 0, "12 34": 0,
		"-1": 0, "+1": 0, "0x10": 0, "99999999999": 0, "4194304": 4194304,
	}
	for in, want := range tests {
		if got := parsePID(in); got != want {
			t.Errorf("parsePID(%q) = %d, want %d", in, got, want)
		}
		if got := parsePID([]byte(in)); got != want {
			t.Errorf("parsePID([]byte(%q)) = %d, want %d", in, got, want)
		}
	}
}

func TestURLsRoundRobinByClient(t *testing.T) {
	a, b := pidServer(t, 1, true), pidServer(t, 2, true)
	res, rep := run(t, Config{URLs: []string{a.URL, b.URL}, Clients: 4, Duration: 100 * time.Millisecond})
	seen := map[int]bool{}
	for _, rec := range res.Records {
		seen[rec.Client] = true
		if want := rec.Client%2 + 1; rec.PID != want {
			t.Fatalf("client %d got pid %d, want %d", rec.Client, rec.PID, want)
		}
	}
	if len(seen) != 4 || rep.Clients != 4 {
		t.Errorf("clients seen %v, report clients %d; want 4", seen, rep.Clients)
	}
}

// hijackServer serves each request by handing the raw connection to f.
func hijackServer(t *testing.T, f func(net.Conn, *bufio.ReadWriter)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		f(c, rw)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFailureKinds(t *testing.T) {
	refusedURL := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String() + "/"
		ln.Close()
		return url
	}
	status := func(code int) func(t *testing.T) string {
		return func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Pid", "9")
				w.WriteHeader(code)
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		}
	}
	tests := []struct {
		name       string
		url        func(t *testing.T) string
		timeout    time.Duration
		wantKind   string
		wantStatus int
	}{
		{"503", status(503), 0, KindStatus5xx, 503},
		{"404", status(404), 0, KindStatus4xx, 404},
		{"302 is not followed", status(302), 0, KindStatusOther, 302},
		{"closed before the response", func(t *testing.T) string {
			return hijackServer(t, func(c net.Conn, _ *bufio.ReadWriter) { c.Close() }).URL
		}, 0, KindEOF, 0},
		{"closed mid-body", func(t *testing.T) string {
			return hijackServer(t, func(c net.Conn, _ *bufio.ReadWriter) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-Pid: 3\r\n\r\nabc")
				c.Close()
			}).URL
		}, 0, KindEOF, 200},
		{"reset", func(t *testing.T) string {
			return hijackServer(t, func(c net.Conn, _ *bufio.ReadWriter) {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}).URL
		}, 0, KindReset, 0},
		{"refused", refusedURL, 0, KindRefused, 0},
		{"timeout", func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		}, 30 * time.Millisecond, KindTimeout, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := 200 * time.Millisecond
			res, rep := run(t, Config{URLs: []string{tt.url(t)}, Clients: 2, Duration: d, Timeout: tt.timeout})
			if len(res.Records) == 0 {
				t.Fatal("no records")
			}
			for _, rec := range res.Records {
				if rec.Kind != tt.wantKind || rec.Status != tt.wantStatus {
					t.Fatalf("record %+v, want kind %q status %d", rec, tt.wantKind, tt.wantStatus)
				}
				if rec.Status == 0 && rec.Err == "" {
					t.Fatalf("record %+v has neither status nor error", rec)
				}
			}
			if rep.Failed != len(res.Records) || rep.FailedByKind[tt.wantKind] != rep.Failed || rep.OK != 0 {
				t.Errorf("report failed %d by kind %v, ok %d; want all %d %s", rep.Failed, rep.FailedByKind, rep.OK, len(res.Records), tt.wantKind)
			}
			// After each failure a client sleeps 10 ms, which bounds the count
			// from above whatever the scheduling.
			if limit := 2 * (int(d/DefaultFailureSleep) + 2); len(res.Records) > limit {
				t.Errorf("%d records in %v with 2 clients, want at most %d: failure sleep not applied", len(res.Records), d, limit)
			}
			if tt.wantKind == KindTimeout && res.Records[0].Latency() < tt.timeout {
				t.Errorf("timed-out request took %v, less than the %v timeout", res.Records[0].Latency(), tt.timeout)
			}
			t.Logf("%d records, first error %q", len(res.Records), rep.FirstFailure[tt.wantKind])
		})
	}
}

// TestTransportRetry uses a server that answers the first request on each
// connection and silently closes it on the second, as uWSGI's --http-socket
// does: the Go transport re-sends the second request on a new connection.
// These re-sends are flagged, and are not failures.
func TestTransportRetry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pid: 11\r\n\r\nok")
				http.ReadRequest(br) // then close without answering
			}()
		}
	}()
	res, rep := run(t, Config{URLs: []string{"http://" + ln.Addr().String() + "/"}, Clients: 2, Duration: 150 * time.Millisecond})
	if rep.Failed != 0 || rep.OK == 0 {
		t.Fatalf("ok %d failed %d %v, want all ok", rep.OK, rep.Failed, rep.FirstFailure)
	}
	if rep.TransportRetries == 0 {
		t.Errorf("TransportRetries = 0, want > 0")
	}
	for _, rec := range res.Records {
		if rec.Retried && !rec.NewConn {
			t.Errorf("retried request %+v did not report its new connection", rec)
		}
	}
	if rep.NewConnsPerRequest < 0.9 {
		t.Errorf("NewConnsPerRequest = %v, want about 1", rep.NewConnsPerRequest)
	}
}

func TestTrigger(t *testing.T) {
	srv := pidServer(t, 1, true)
	boom := errors.New("boom")
	at := 100 * time.Millisecond
	res, rep := run(t, Config{
		URLs: []string{srv.URL}, Clients: 2, Duration: 400 * time.Millisecond,
		TriggerAt: at,
		Trigger: func(ctx context.Context) error {
			time.Sleep(20 * time.Millisecond)
			return boom
		},
	})
	if !res.Triggered {
		t.Fatal("trigger did not run")
	}
	if res.TriggerStart < at || res.TriggerStart > at+2*time.Second {
		t.Errorf("TriggerStart = %v, want about %v", res.TriggerStart, at)
	}
	if d := res.TriggerEnd - res.TriggerStart; d < 20*time.Millisecond {
		t.Errorf("trigger ran %v, want at least 20ms", d)
	}
	if !errors.Is(res.TriggerErr, boom) || rep.Restart.TriggerErr != "boom" {
		t.Errorf("TriggerErr = %v / %q, want boom", res.TriggerErr, rep.Restart.TriggerErr)
	}
	if len(rep.Restart.OldPIDs) != 1 || len(rep.Restart.NewPIDs) != 0 || rep.Restart.Done {
		t.Errorf("restart = %+v, want old pid 1 and no new pid", rep.Restart)
	}
	if !strings.Contains(rep.String(), "error: boom") {
		t.Errorf("String() does not report the trigger error:\n%s", rep)
	}
}

// TestTriggerRestart switches the answering pid when the trigger runs, like
// a restart, and checks the pid sets seen live.
func TestTriggerRestart(t *testing.T) {
	var pid atomic.Int64
	pid.Store(100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Pid", strconv.FormatInt(pid.Load(), 10))
	}))
	t.Cleanup(srv.Close)
	_, rep := run(t, Config{
		// Half a second on either side of the trigger: the clients' first
		// requests come before it even on a loaded machine.
		URLs: []string{srv.URL}, Clients: 2, Duration: time.Second,
		TriggerAt: 500 * time.Millisecond,
		Trigger: func(ctx context.Context) error {
			pid.Store(200)
			return nil
		},
	})
	rs := rep.Restart
	if rs == nil || fmt.Sprint(rs.OldPIDs) != "[100]" || fmt.Sprint(rs.NewPIDs) != "[200]" || !rs.Done {
		t.Fatalf("restart = %+v, want old [100] new [200]", rs)
	}
	// W = done + 2 s lies beyond the 1 s run.
	if !rs.WindowCapped || rs.WindowEnd != rep.Elapsed || rs.PIDsReplaced != 1 {
		t.Errorf("window end %v (capped %v), replaced %d; want capped at %v, 1", rs.WindowEnd, rs.WindowCapped, rs.PIDsReplaced, rep.Elapsed)
	}
	if rep.Failed != 0 || rs.Window.OK == 0 || rep.Steady.OK == 0 {
		t.Errorf("failed %d, window ok %d, steady ok %d", rep.Failed, rs.Window.OK, rep.Steady.OK)
	}
}

// TestTriggerCancelledAtLoadEnd checks that a trigger still running when the
// load stops sees its context cancelled and that Run waits for it.
func TestTriggerCancelledAtLoadEnd(t *testing.T) {
	srv := pidServer(t, 1, true)
	var returned atomic.Bool
	res, _ := run(t, Config{
		URLs: []string{srv.URL}, Clients: 1, Duration: 200 * time.Millisecond,
		TriggerAt: 50 * time.Millisecond,
		Trigger: func(ctx context.Context) error {
			<-ctx.Done()
			returned.Store(true)
			return ctx.Err()
		},
	})
	if !returned.Load() || !errors.Is(res.TriggerErr, context.DeadlineExceeded) {
		t.Errorf("trigger returned %v with %v, want true with deadline exceeded", returned.Load(), res.TriggerErr)
	}
}

func TestTriggerSkipped(t *testing.T) {
	srv := pidServer(t, 1, true)
	res, rep := run(t, Config{
		URLs: []string{srv.URL}, Clients: 1, Duration: 50 * time.Millisecond,
		TriggerAt: time.Hour,
		Trigger:   func(ctx context.Context) error { panic("must not run") },
	})
	if res.Triggered || rep.Restart != nil || !rep.TriggerSkipped {
		t.Errorf("triggered %v, restart %v, skipped %v; want false, nil, true", res.Triggered, rep.Restart, rep.TriggerSkipped)
	}
}

func TestShellTrigger(t *testing.T) {
	var out bytes.Buffer
	if err := ShellTrigger("echo hello; echo err >&2", &out)(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "hello\nerr\n" {
		t.Errorf("output %q, want hello and err", got)
	}
	if err := ShellTrigger("exit 3", nil)(t.Context()); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("err = %v, want exit status 3", err)
	}
	// Cancellation kills the shell and its children: without the process
	// group kill, "sleep" would hold the output pipe open for 30 s.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := ShellTrigger("sleep 30; echo done", &out)(ctx)
	if err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("cancelled trigger returned %v after %v", err, time.Since(start))
	}
}

// TestCancelStopsCleanly runs with Duration 0 against a server that never
// answers, cancels, and checks that Run returns with the in-flight requests
// counted as aborted, not as failures.
func TestCancelStopsCleanly(t *testing.T) {
	var inFlight atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for inFlight.Load() < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	done := make(chan struct{})
	var res *Result
	go func() {
		defer close(done)
		var err error
		res, err = Run(ctx, Config{URLs: []string{srv.URL}, Clients: 3})
		if err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if res == nil {
		return
	}
	if len(res.Records) != 0 || res.Aborted != 3 {
		t.Errorf("records %v, aborted %d; want none and 3", res.Records, res.Aborted)
	}
	if rep := res.Report(); rep.Failed != 0 || rep.Aborted != 3 {
		t.Errorf("report failed %d aborted %d", rep.Failed, rep.Aborted)
	}
}

// TestCancelWithLoad cancels a run without a duration once answers
// come (the 20th), as a caller stopping it would: the run ends, and what
// was answered is kept, with no failure. (A fixed deadline could end
// before a loaded machine's first answer.)
func TestCancelWithLoad(t *testing.T) {
	srv := pidServer(t, 1, true)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var seen atomic.Int64
	done := make(chan struct{})
	var res *Result
	var err error
	go func() {
		defer close(done)
		res, err = Run(ctx, Config{URLs: []string{srv.URL}, Clients: 4, OnRecord: func(Record) {
			if seen.Add(1) == 20 {
				cancel()
			}
		}})
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after cancel")
	}
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report()
	if rep.OK < 20 || rep.Failed != 0 {
		t.Errorf("ok %d failed %d %v, want at least 20 ok and no failure", rep.OK, rep.Failed, rep.FirstFailure)
	}
}

func TestOnRecordSeesEveryRecord(t *testing.T) {
	srv := pidServer(t, 1, true)
	var n atomic.Int64
	var pids atomic.Int64
	res, _ := run(t, Config{
		URLs: []string{srv.URL}, Clients: 3, Duration: 100 * time.Millisecond,
		OnRecord: func(r Record) {
			n.Add(1)
			pids.Add(int64(r.PID))
		},
	})
	if int(n.Load()) != len(res.Records) || pids.Load() != int64(len(res.Records)) {
		t.Errorf("OnRecord saw %d records (pid sum %d), Records has %d", n.Load(), pids.Load(), len(res.Records))
	}
}

func TestRecordsSortedByStart(t *testing.T) {
	srv := pidServer(t, 1, true)
	res, _ := run(t, Config{URLs: []string{srv.URL}, Clients: 4, Duration: 100 * time.Millisecond})
	for i := 1; i < len(res.Records); i++ {
		if res.Records[i].Start < res.Records[i-1].Start {
			t.Fatalf("records %d and %d out of order", i-1, i)
		}
	}
	for _, rec := range res.Records {
		if rec.End < rec.Start || rec.End > res.End {
			t.Fatalf("record %+v outside the run (end %v)", rec, res.End)
		}
	}
}

func TestMethodBodyHeader(t *testing.T) {
	var bad atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || string(b) != "payload" || r.Header.Get("X-Test") != "yes" || r.Header.Get("Accept-Encoding") != "" {
			bad.Add(1)
		}
		io.WriteString(w, "3")
	}))
	t.Cleanup(srv.Close)
	_, rep := run(t, Config{
		URLs: []string{srv.URL}, Clients: 2, Duration: 100 * time.Millisecond,
		Method: http.MethodPost, Body: []byte("payload"), Header: http.Header{"X-Test": {"yes"}},
	})
	if rep.OK == 0 || bad.Load() != 0 {
		t.Errorf("ok %d, %d requests arrived wrong", rep.OK, bad.Load())
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Clients: 1},
		{URLs: []string{"http://x/"}},
		{URLs: []string{"http://x/"}, Clients: 1, Duration: -1},
		{URLs: []string{"::bad"}, Clients: 1},
	} {
		if _, err := Run(t.Context(), cfg); err == nil {
			t.Errorf("Run(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestWriteCSV(t *testing.T) {
	res := &Result{Records: []Record{
		{Client: 1, Start: 1500 * time.Microsecond, End: 3 * time.Millisecond, Status: 200, PID: 42, NewConn: true},
		{Client: 0, Start: 2 * time.Second, End: 2*time.Second + 1, Err: "EOF", Kind: KindEOF, Retried: true},
	}}
	var b bytes.Buffer
	if err := res.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	want := CSVHeader + "\n1,1.500,3.000,200,ok,42,0,1\n0,2000.000,2000.000,0,eof,0,1,0\n"
	if b.String() != want {
		t.Errorf("CSV:\n%s\nwant:\n%s", b.String(), want)
	}
}
