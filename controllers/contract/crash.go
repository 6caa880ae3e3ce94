package contract

import "time"

// CrashWindow is how long a new process must live once ready before it
// counts as working. The agent counts a worker that exits unexpectedly
// within it as a failed spawn (a scaling error, backed off from the
// second; once a worker of the revision has lived it, up to two in a
// row that die in a request are replaced at once), and the manager gives no further node a revision not yet
// proven until the first nodes' new processes have all lived it: an app
// that boots and then dies stops at the first wave, as one that cannot
// boot does.
const CrashWindow = 10 * time.Second
