package cluster

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestAgentHeldPort: a pool whose listen.port one of the agent's own
// pools still holds, serving out the drain delay there, is told whose the
// port is (it said "another process on the node holds port N", which
// sent the reader looking for a process that is the agent itself), and
// listens as soon as the port is released: the retry of a taken port is
// 5 minutes away here (half the heartbeat), the test waits 90 s at most.
// The cases are what the agent meets: another AppGroup's pool deleted
// (its requests still in flight once its drain delay ends: they do not
// hold the port, only its listener does), a port another pool moved off,
// and a deleted pool released by hand while a pool of its name is
// created again.
func TestAgentHeldPort(t *testing.T) {
	tests := []struct {
		name string
		// hold makes one of the agent's pools hold port on node.
		hold func(t *testing.T, ns, node, dir string, book *agenttest.Logbook, port int32) held
	}{
		{name: "another pool deleted, a request in flight", hold: func(t *testing.T, ns, node, _ string, book *agenttest.Logbook, port int32) held {
			pp, key := createSized(t, ns, "old-"+node, node, port, 1, 2*time.Minute)
			waitPool(t, key, "a ready report", rolledOut)
			answered, stuck := stickRequest(t, key, port)
			t.Cleanup(func() { _ = syscall.Kill(int(stuck.PID), syscall.SIGKILL) })
			if err := env.Client.Delete(context.Background(), pp); err != nil {
				t.Fatal(err)
			}
			book.WaitFor(t, "Pool deleted; serving on for the drain delay")
			return held{name: "new-" + node,
				want: fmt.Sprintf("port %d is still held by this agent's pool %s, deleted, which serves on there for the drain delay", port, key),
				after: func(t *testing.T) {
					select {
					case err := <-answered:
						t.Errorf("the deleted pool's request ended (%v) before the port was served again: nothing shows that the port is free while it is in flight", err)
					default:
					}
				}}
		}},
		{name: "a port another pool moved off", hold: func(t *testing.T, ns, node, _ string, _ *agenttest.Logbook, port int32) held {
			_, key := readyPool(t, ns, "mover-"+node, node, port)
			newPort := freePort(t)
			setPort(t, key, newPort)
			waitPool(t, key, "the new port reported", func(p *ferryv1.ProcessPool) bool {
				return p.Status.ListenPort == newPort && p.Status.Address == addr(newPort)
			})
			return held{name: "taker-" + node, want: fmt.Sprintf("port %d is still held by this agent's pool %s, which moved off it and serves on there for the drain delay", port, key)}
		}},
		{name: "a deleted pool released, its name created again", hold: func(t *testing.T, ns, node, dir string, _ *agenttest.Logbook, port int32) held {
			pp, key := readyPool(t, ns, "hello-"+node, node, port)
			releaseDuringDrain(t, dir, pp, key)
			return held{name: pp.Name, want: fmt.Sprintf("port %d is still held by this agent's earlier pool of this name, %s, deleted", port, key)}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := namespace(t)
			node := "node-hp" + strconv.Itoa(i)
			dir := stateDir(t)
			book := agenttest.NewLogbook(t)
			// The holder's drain delay ends once the new pool was seen
			// refused the port: a timer would race the create, the
			// spawn and the report on a loaded machine.
			onCue, endDelay := drainDelayOnCue()
			defer endDelay()
			runAgent(t, node, env.Config, dir, logTo(book), onCue, func(o *Options) { o.HeartbeatInterval = 10 * time.Minute })
			port := freePort(t)
			h := tt.hold(t, ns, node, dir, book, port)
			pp := newPool(ns, h.name, node, "1-aaa", port, example("hello-wsgi"))
			if err := env.Client.Create(context.Background(), pp); err != nil {
				t.Fatal(err)
			}
			key := client.ObjectKeyFromObject(pp)
			failed := waitPool(t, key, "ListenFailed", func(p *ferryv1.ProcessPool) bool {
				c := meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionReady)
				return p.UID == pp.UID && c != nil && c.Reason == ferryv1.ReasonListenFailed
			})
			c := meta.FindStatusCondition(failed.Status.Conditions, ferryv1.ConditionReady)
			if !strings.Contains(c.Message, h.want) || strings.Contains(c.Message, "another process") {
				t.Errorf("Ready's message:\n%q\nwant it to say %q, not another process", c.Message, h.want)
			}
			endDelay()
			served := waitPool(t, key, "Ready, on the port released", func(p *ferryv1.ProcessPool) bool {
				return meta.IsStatusConditionTrue(p.Status.Conditions, ferryv1.ConditionReady) && p.Status.Address == addr(port)
			})
			if h.after != nil {
				h.after(t)
			}
			pids := map[string]bool{}
			for _, p := range served.Status.Processes {
				pids[strconv.Itoa(int(p.PID))] = true
			}
			fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			if code, body, err := getWith(fresh, "http://"+addr(port)+"/"); err != nil || code != http.StatusOK || !pids[strings.TrimSpace(body)] {
				t.Errorf("GET on port %d once released: %d %q %v, want 200 from a worker of the new pool %v", port, code, body, err, pids)
			}
			book.WaitFor(t, "Proxy listens again")
		})
	}
}

// held is a port one of the agent's pools holds, for TestAgentHeldPort:
// the name of the pool to create on it, what its ListenFailed message
// must say, and what to check of the holder once the new pool serves
// (nil: nothing).
type held struct {
	name, want string
	after      func(t *testing.T)
}

func addr(port int32) string { return "127.0.0.1:" + strconv.Itoa(int(port)) }
