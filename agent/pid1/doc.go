// Package pid1 makes the agent a sound first process of its container.
//
// The agent image starts ferry-agent as its container's pid 1, with no
// init before it. Every orphan in the container is handed to pid 1: a
// worker's children once the worker exits (its group is killed then), the
// grandchild of a worker whose child exited (a shell's `daemon &`, a
// double fork). Their exits are pid 1's to collect; left uncollected they
// stay zombies, and fill the container's pid limit over a few thousand
// restarts.
//
// The agent does not collect them itself: a wait for any child would take
// the exits its own waits need too (a worker's, whose status it reports; a
// credential plugin client-go runs). Instead, as tini does, pid 1 starts
// the agent again as its only child (Supervise), forwards it the signals a
// container is sent, collects every exit handed to it, and exits as the
// agent did. The agent, pid 2, waits for its own children as anywhere
// else. Outside a container (pid other than 1), nothing of this happens.
package pid1
