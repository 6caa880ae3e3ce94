package loadgen

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults applied by Run to zero Config fields.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultPIDHeader    = "X-Pid"
	DefaultFailureSleep = 10 * time.Millisecond
)

// Config describes one load run. The zero value of every optional field
// selects its default.
type Config struct {
	// URLs are the targets; client c sends to URLs[c % len(URLs)], so load can
	// go through several nodes. At least one is required.
	URLs []string
	// Clients is the number of concurrent closed-loop clients, each with one
	// keep-alive connection. At least 1.
	Clients int
	// Duration is how long clients keep sending. 0 runs until ctx is
	// cancelled.
	Duration time.Duration
	// Timeout bounds each request, body included. Default 10 s.
	Timeout time.Duration
	// PIDHeader is the response header carrying the worker PID. Default
	// "X-Pid". When a response lacks it, the PID is parsed from a decimal
	// body.
	PIDHeader string
	// FailureSleep is how long a client sleeps after a failed request.
	// Default 10 ms; negative disables the sleep.
	FailureSleep time.Duration
	// TriggerAt is when Trigger runs, as an offset from the start of the run.
	// Trigger runs only when TriggerAt > 0 and Trigger != nil.
	TriggerAt time.Duration
	// Trigger starts the event under test (typically a restart). Its context
	// is cancelled when the load stops; Run waits for it to return.
	Trigger func(ctx context.Context) error
	// Method is the request method. Default GET.
	Method string
	// Body is sent with every request when non-empty.
	Body []byte
	// Header is added to every request.
	Header http.Header
	// OnRecord, when set, is called for every completed request, from the
	// client goroutines, concurrently. It must be cheap and must not block.
	OnRecord func(Record)
}

// Record is one completed request.
type Record struct {
	// Client is the index of the client that sent the request.
	Client int `json:"client"`
	// Start and End are offsets from the start of the run.
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
	// Status is the HTTP status, 0 if no response arrived.
	Status int `json:"status,omitempty"`
	// Err is the transport error text, "" if none.
	Err string `json:"err,omitempty"`
	// Kind is "" for a successful request, else one of the Kind constants.
	Kind string `json:"kind,omitempty"`
	// PID is the worker PID that answered, 0 if unknown.
	PID int `json:"pid,omitempty"`
	// Retried reports that the Go transport silently re-sent the request. It
	// is not a failure by itself.
	Retried bool `json:"retried,omitempty"`
	// NewConn reports that a new connection was dialled for the request.
	NewConn bool `json:"new_conn,omitempty"`
}

// OK reports whether the request succeeded: a 2xx status and a body read
// without error.
func (r Record) OK() bool { return r.Kind == "" }

// Latency is End - Start.
func (r Record) Latency() time.Duration { return r.End - r.Start }

// Result is the raw outcome of a run.
type Result struct {
	// Config is the configuration after defaults were applied.
	Config Config
	// Records holds every completed request, sorted by Start.
	Records []Record
	// Start is the wall-clock start of the run; every offset is relative to it.
	Start time.Time
	// End is when the last client stopped (the end of the run).
	End time.Duration
	// Aborted counts requests in flight when ctx was cancelled. They are not
	// in Records.
	Aborted int
	// Triggered reports that the trigger ran. TriggerStart and TriggerEnd are
	// its start and its return, TriggerErr what it returned.
	Triggered    bool
	TriggerStart time.Duration
	TriggerEnd   time.Duration
	TriggerErr   error
}

// Run generates load as cfg describes and returns every request it recorded.
// It returns an error only for an invalid Config. It returns when the
// Duration has elapsed and the requests in flight have completed, or, when ctx
// is cancelled, as soon as the requests in flight are aborted; in both cases
// it also waits for the trigger to return.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	clients := make([]*client, cfg.Clients)
	for i := range clients {
		c, err := newClient(ctx, i, &cfg)
		if err != nil {
			return nil, err
		}
		clients[i] = c
	}

	// loadCtx ends the load phase: clients stop sending and the trigger's
	// context is cancelled. Requests themselves use ctx, so only the
	// caller's cancellation aborts them.
	var loadCtx context.Context
	var stopLoad context.CancelFunc
	if cfg.Duration > 0 {
		loadCtx, stopLoad = context.WithTimeout(ctx, cfg.Duration)
	} else {
		loadCtx, stopLoad = context.WithCancel(ctx)
	}
	defer stopLoad()

	res := &Result{Config: cfg, Start: time.Now()}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { c.loop(ctx, loadCtx.Done(), res.Start) })
	}
	var trig sync.WaitGroup
	if cfg.Trigger != nil && cfg.TriggerAt > 0 {
		trig.Go(func() { runTrigger(loadCtx, &cfg, res) })
	}
	wg.Wait()
	res.End = time.Since(res.Start)
	stopLoad()
	trig.Wait()

	n := 0
	for _, c := range clients {
		n += len(c.recs)
		res.Aborted += c.aborted
		c.hc.CloseIdleConnections()
	}
	res.Records = make([]Record, 0, n)
	for _, c := range clients {
		res.Records = append(res.Records, c.recs...)
	}
	slices.SortStableFunc(res.Records, func(a, b Record) int { return cmp.Compare(a.Start, b.Start) })
	return res, nil
}

func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.URLs) == 0 {
		return cfg, errors.New("loadgen: no URL")
	}
	if cfg.Clients < 1 {
		return cfg, fmt.Errorf("loadgen: clients must be at least 1, got %d", cfg.Clients)
	}
	if cfg.Duration < 0 || cfg.TriggerAt < 0 || cfg.Timeout < 0 {
		return cfg, errors.New("loadgen: negative duration")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PIDHeader == "" {
		cfg.PIDHeader = DefaultPIDHeader
	}
	if cfg.FailureSleep == 0 {
		cfg.FailureSleep = DefaultFailureSleep
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodGet
	}
	cfg.URLs = slices.Clone(cfg.URLs)
	return cfg, nil
}

func runTrigger(loadCtx context.Context, cfg *Config, res *Result) {
	t := time.NewTimer(cfg.TriggerAt - time.Since(res.Start))
	defer t.Stop()
	select {
	case <-t.C:
	case <-loadCtx.Done():
		return
	}
	// Run reads these fields only after this goroutine has returned.
	res.Triggered = true
	res.TriggerStart = time.Since(res.Start)
	res.TriggerErr = cfg.Trigger(loadCtx)
	res.TriggerEnd = time.Since(res.Start)
}

// client is one closed-loop client. Its fields are touched only by its own
// goroutine, except the trace flags, which the transport may set from its
// write goroutine.
type client struct {
	id        int
	hc        *http.Client
	req       *http.Request
	body      []byte
	bodyRd    *bytes.Reader
	pidKey    string
	sleep     time.Duration
	onRecord  func(Record)
	recs      []Record
	aborted   int
	small     [32]byte
	gotConns  atomic.Int32
	newConn   atomic.Bool
	wroteFail atomic.Bool
}

func newClient(ctx context.Context, id int, cfg *Config) (*client, error) {
	c := &client{
		id:       id,
		body:     cfg.Body,
		pidKey:   textproto.CanonicalMIMEHeaderKey(cfg.PIDHeader),
		sleep:    cfg.FailureSleep,
		onRecord: cfg.OnRecord,
		recs:     make([]Record, 0, initialRecords(cfg)),
	}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   cfg.Timeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		MaxIdleConns:        1,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	c.hc = &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			c.gotConns.Add(1)
			if !info.Reused {
				c.newConn.Store(true)
			}
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err != nil {
				c.wroteFail.Store(true)
			}
		},
	}
	url := cfg.URLs[id%len(cfg.URLs)]
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), cfg.Method, url, nil)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	for k, vs := range cfg.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if len(c.body) > 0 {
		c.bodyRd = bytes.NewReader(c.body)
		body := c.body
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		}
	}
	c.req = req
	return c, nil
}

// initialRecords sizes a client's record slice so that short runs never
// grow it: about 2000 requests per client per second, at most 64k.
func initialRecords(cfg *Config) int {
	if cfg.Duration <= 0 {
		return 4096
	}
	return int(min(max(cfg.Duration.Seconds()*2000/float64(cfg.Clients), 1024), 65536))
}

// loop sends requests until stop, the first whatever the time: a client
// whose goroutine started late on a loaded machine still counts (and a
// short run is never empty).
func (c *client) loop(ctx context.Context, stop <-chan struct{}, start time.Time) {
	var sleep *time.Timer
	for first := true; ; first = false {
		if !first {
			select {
			case <-stop:
				return
			default:
			}
		}
		rec, ok := c.do(ctx, start)
		if !ok {
			c.aborted++
			return
		}
		c.recs = append(c.recs, rec)
		if c.onRecord != nil {
			c.onRecord(rec)
		}
		if rec.Kind == "" || c.sleep <= 0 {
			continue
		}
		if sleep == nil {
			sleep = time.NewTimer(c.sleep)
		} else {
			sleep.Reset(c.sleep)
		}
		select {
		case <-sleep.C:
		case <-stop:
			sleep.Stop()
			return
		}
	}
}

// do sends one request and reads the whole response. It returns false when
// the request was aborted because ctx was cancelled.
func (c *client) do(ctx context.Context, start time.Time) (Record, bool) {
	c.gotConns.Store(0)
	c.newConn.Store(false)
	c.wroteFail.Store(false)
	if c.bodyRd != nil {
		c.bodyRd.Reset(c.body)
		c.req.Body = io.NopCloser(c.bodyRd)
	}
	rec := Record{Client: c.id, Start: time.Since(start)}
	resp, err := c.hc.Do(c.req)
	if err == nil {
		rec.Status = resp.StatusCode
		err = c.readBody(resp, &rec)
	}
	rec.End = time.Since(start)
	if err != nil && ctx.Err() != nil {
		return rec, false
	}
	rec.Retried = c.gotConns.Load() > 1 || c.wroteFail.Load()
	rec.NewConn = c.newConn.Load()
	if err != nil {
		rec.Err = err.Error()
		rec.Kind = classify(err)
	} else {
		rec.Kind = statusKind(rec.Status)
	}
	return rec, true
}

// readBody reads the PID and drains and closes the body.
func (c *client) readBody(resp *http.Response, rec *Record) error {
	defer resp.Body.Close()
	if v := resp.Header[c.pidKey]; len(v) > 0 {
		rec.PID = parsePID(v[0])
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	n, err := io.ReadFull(resp.Body, c.small[:])
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		rec.PID = parsePID(c.small[:n])
		return nil
	case err == nil:
		// Longer than any PID: not a PID body.
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	default:
		return err
	}
}

// parsePID parses a decimal PID surrounded by optional white space. It
// returns 0 for anything else.
func parsePID[S string | []byte](s S) int {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	if i == j || j-i > 10 {
		return 0
	}
	pid := 0
	for ; i < j; i++ {
		d := s[i]
		if d < '0' || d > '9' {
			return 0
		}
		pid = pid*10 + int(d-'0')
	}
	return pid
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }
