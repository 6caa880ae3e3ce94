package kubectlferry

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

const restartSynopsis = "kubectl ferry restart NAME [--revision R] [--wait] [--timeout 30m] [-n NAMESPACE]"

// DefaultWaitTimeout is restart --wait's default --timeout.
const DefaultWaitTimeout = 30 * time.Minute

// restartSuffix separates a non-numeric revision from the count of
// restarts of it that NextRevision appends: "v1.2" → "v1.2_1" → "v1.2_2".
const restartSuffix = "_"

func (a *App) restart(ctx context.Context, conn *connection, args []string) error {
	fs := newFlagSet("restart")
	conn.bind(fs)
	revision := fs.String("revision", "",
		"the new ferry.dev/revision value, e.g. a commit id (default: a counter plus one, else the value with _1, _2... appended)")
	wait := fs.Bool("wait", false,
		"follow the rollout: exit 0 once every node runs the new revision, 1 when the AppGroup resists it")
	timeout := fs.Duration("timeout", DefaultWaitTimeout, "give up after this long (exit 1)")
	name, err := a.parseCommand(fs, restartSynopsis, args)
	if err != nil {
		return err
	}
	if fs.Changed("revision") {
		if err := contract.ValidateRevision(*revision); err != nil {
			return usageErrorf("--revision: %s", err)
		}
	}
	if *timeout <= 0 {
		return usageErrorf("--timeout must be positive, got %s", *timeout)
	}
	cl, err := conn.connect()
	if err != nil {
		return err
	}
	// The context's deadline bounds the requests; the wait itself also
	// reads its deadline off App.clock at each poll (waitRollout), the
	// same instant where that is the real clock.
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	deadline := a.elapsedNow().Add(*timeout)
	start := a.now()

	var ag *ferryv1.AppGroup
	var previous, next string
	var had bool
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		if ag, err = cl.getAppGroup(ctx, name); err != nil {
			return err
		}
		previous, had = ag.Annotations[ferryv1.RevisionAnnotation]
		next = *revision
		if !fs.Changed("revision") {
			next = NextRevision(previous, had, a.now())
		}
		if had && next == previous {
			return nil
		}
		// The lock makes two concurrent restarts two revisions, not one.
		patch := client.MergeFromWithOptions(ag.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if ag.Annotations == nil {
			ag.Annotations = map[string]string{}
		}
		ag.Annotations[ferryv1.RevisionAnnotation] = next
		return cl.c.Patch(ctx, ag, patch)
	})
	if err != nil {
		if err = cl.explain(err, name); explained(err) {
			return err
		}
		return fmt.Errorf("bumping the revision of AppGroup %s/%s: %w", cl.namespace, name, err)
	}
	switch {
	case had && next == previous:
		fmt.Fprintf(a.Out, "AppGroup %s/%s is already at revision %s: nothing new to roll\n", ag.Namespace, ag.Name, next)
	case had:
		fmt.Fprintf(a.Out, "Restarting %s/%s to revision %s (was %s)\n", ag.Namespace, ag.Name, next, previous)
	default:
		fmt.Fprintf(a.Out, "Restarting %s/%s to revision %s\n", ag.Namespace, ag.Name, next)
	}
	if !*wait {
		return nil
	}
	return a.waitRollout(ctx, cl, ag, next, start, deadline)
}

// NextRevision is the ferry.dev/revision value `restart` sets when not
// given one, from the current value (present: whether the annotation is
// set at all):
//
//   - none (or empty): "1", the successor of the implied "0";
//   - a decimal counter: the counter plus one, zero-padded to its width
//     ("7" → "8", "009" → "010");
//   - anything else, a version or a commit id: the value with a restart
//     count appended ("v1.2" → "v1.2_1", then "v1.2_2"). Incrementing the
//     value's own trailing digits ("v1.3") would name a release that was
//     never deployed; the suffix says "the same code, restarted", as the
//     standalone agent's "+1" does (and '+' is not allowed here). A value
//     that already ends in "_<digits>" has its count incremented;
//   - when that would not be valid (too long, or the current value is
//     invalid): "r<unix seconds>".
func NextRevision(current string, present bool, now time.Time) string {
	var next string
	switch {
	case !present || current == "":
		return "1"
	case isDigits(current):
		next = incrementDecimal(current)
	default:
		if i := strings.LastIndex(current, restartSuffix); i > 0 && isDigits(current[i+len(restartSuffix):]) {
			next = current[:i] + restartSuffix + incrementDecimal(current[i+len(restartSuffix):])
		} else {
			next = current + restartSuffix + "1"
		}
	}
	if contract.ValidateRevision(next) != nil {
		return "r" + strconv.FormatInt(now.Unix(), 10)
	}
	return next
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// incrementDecimal adds one to a string of decimal digits of any length,
// keeping its width unless it carries over ("99" → "100").
func incrementDecimal(s string) string {
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '9' {
			b[i]++
			return string(b)
		}
		b[i] = '0'
	}
	return "1" + string(b)
}

// onRevision reports whether the target revision status.revision was
// formed from the annotation value: it is "<annotation>-<hash>", the hash
// having no '-' (so "8-x-<hash>", from annotation "8-x", is not on "8").
func onRevision(statusRevision, annotation string) bool {
	hash, ok := strings.CutPrefix(statusRevision, annotation+"-")
	return ok && hash != "" && !strings.Contains(hash, "-")
}
