package cluster

import (
	"context"
	"errors"
	"maps"
	"net"
	"regexp"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferry-dev/ferry/controllers/contract"
)

// renewLease keeps the node's agent Lease fresh: the manager reads it to
// know the agent is alive, so that pool statuses need not be rewritten just
// to say so. It renews every heartbeat interval, and retries after a
// second while the API server does not answer.
func (a *Agent) renewLease(ctx context.Context) {
	for {
		next := a.opts.HeartbeatInterval
		if err := a.renewOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if since, ok := a.leaseTrouble.failed(time.Now(), err); ok {
				a.log.Error(err, "Could not renew the agent's lease; will retry", "namespace", a.opts.LeaseNamespace,
					"failingSince", since.UTC().Format(time.RFC3339))
			}
			next = time.Second
		} else if since, was := a.leaseTrouble.renewed(); was {
			a.log.Info("Renewed the agent's lease again", "failedFor", time.Since(since).Round(time.Second).String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// leaseRemindEvery is how often a lease renewal that keeps failing the
// same way is logged again: once would be lost in a long log, every second
// would drown it.
const leaseRemindEvery = 5 * time.Minute

// leaseTrouble decides which failed lease renewals are logged: the first,
// one that fails in a way not yet logged since they began to fail (an
// outage that turns into a Forbidden), and a reminder every
// leaseRemindEvery. A kind that comes back is not logged again before the
// reminder: a restarting API server refuses, then does not answer, then
// refuses again, and a line at each switch would log its outage every
// few tries. Each pool's reporter keeps one for its status writes too,
// and each drained pool's release of its finalizer.
type leaseTrouble struct {
	since, logged time.Time       // since: zero while renewals succeed
	kinds         map[string]bool // the troubleKeys logged since since
}

// maxTroubleKinds bounds leaseTrouble.kinds: errors whose words change
// otherwise than by their numbers are a kind each, logged each; once
// there are this many, the kinds start over.
const maxTroubleKinds = 8

// The kinds of trouble that are one whatever their errors say: through
// one outage the words change from try to try (a frozen API server's TLS
// handshake times out on one try, the request's deadline passes first on
// the next; a rebooting node's refuses, then has no route), and a line
// each time they do would log an outage every few seconds.
const (
	troubleNoAnswer    = "the API server does not answer"
	troubleUnreachable = "the API server cannot be reached"
)

// numbers are what troubleKey leaves out of other errors.
var numbers = regexp.MustCompile(`[0-9]+`)

// troubleKey is what tells one trouble from another: troubleUnreachable
// or troubleNoAnswer for the connection's errors that are one (see
// unreachable and noAnswer); for any other error, an answer of the API
// server's always (a Forbidden, a Conflict, a 5xx with its message), its
// message without its numbers: a reset or a broken pipe names the
// connection's ephemeral port, another on every try, and is the same
// trouble all the same.
func troubleKey(err error) string {
	if answer := apierrors.APIStatus(nil); !errors.As(err, &answer) {
		switch {
		case unreachable(err):
			return troubleUnreachable
		case noAnswer(err):
			return troubleNoAnswer
		}
	}
	return numbers.ReplaceAllString(err.Error(), "#")
}

// unreachable: nothing takes the connection; the address is refused, has
// no route, or its name does not resolve (a DNS error, even one that
// timed out).
func unreachable(err error) bool {
	var dns *net.DNSError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.As(err, &dns)
}

// noAnswer: the connection was made, or is being made, and nothing comes
// back in time, however it is said: a dial, a TLS handshake or a read
// that timed out ("i/o timeout", "net/http: TLS handshake timeout",
// "Client.Timeout exceeded"), the request's deadline ("context deadline
// exceeded"), client-go's rate limiter that would wait past it, or an
// HTTP/2 connection closed because its pings went unanswered.
func noAnswer(err error) bool {
	msg := err.Error()
	return utilnet.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(msg, "would exceed context deadline") || // golang.org/x/time/rate's Wait
		strings.Contains(msg, "http2: client connection lost") // golang.org/x/net/http2's lost ping
}

// failed records a failed renewal at now; log says to log it, and since
// is when the renewals began to fail.
func (lt *leaseTrouble) failed(now time.Time, err error) (since time.Time, log bool) {
	if lt.since.IsZero() {
		lt.since = now
	}
	kind := troubleKey(err)
	if lt.kinds[kind] && now.Sub(lt.logged) < leaseRemindEvery {
		return lt.since, false
	}
	if lt.kinds == nil || len(lt.kinds) >= maxTroubleKinds {
		lt.kinds = map[string]bool{}
	}
	lt.logged, lt.kinds[kind] = now, true
	return lt.since, true
}

// renewed records a renewal that succeeded; was says renewals had failed
// since then.
func (lt *leaseTrouble) renewed() (since time.Time, was bool) {
	since, was = lt.since, !lt.since.IsZero()
	*lt = leaseTrouble{}
	return since, was
}

func (a *Agent) renewOnce(ctx context.Context) error {
	return bounded(ctx, func(ctx context.Context) error {
		return RenewLease(ctx, a.client, a.opts.LeaseNamespace, a.opts.NodeName, a.opts.HeartbeatInterval)
	})
}

// RenewLease creates or renews node's agent Lease in namespace, held by
// node, with a duration of four heartbeat intervals: the writes an agent
// makes to say it is alive, and all the lease isolation policy lets it
// make. The manager trusts its own staleness bound, not the duration.
func RenewLease(ctx context.Context, c client.Client, namespace, node string, heartbeat time.Duration) error {
	now := metav1.NewMicroTime(time.Now())
	key := types.NamespacedName{Namespace: namespace, Name: contract.AgentLeaseName(node)}
	lease := &coordinationv1.Lease{}
	err := c.Get(ctx, key, lease)
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: contract.AgentLeaseLabels(node)},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(node),
				LeaseDurationSeconds: ptr.To(int32((4 * heartbeat).Seconds())),
				AcquireTime:          &now,
				RenewTime:            &now,
			},
		}
		return c.Create(ctx, lease)
	}
	if err != nil {
		return err
	}
	if lease.Labels == nil {
		lease.Labels = map[string]string{}
	}
	maps.Copy(lease.Labels, contract.AgentLeaseLabels(node)) // restored if someone took them off
	lease.Spec.HolderIdentity = ptr.To(node)
	lease.Spec.RenewTime = &now
	return c.Update(ctx, lease)
}
