// Package spawn starts and stops real worker processes: Python WSGI apps
// under Ferry's embedded loader (package wsgi) and Command apps that serve
// HTTP on $PORT. It knows nothing of pools or requests; package pool decides
// when to spawn and stop, this package does it.
//
// A spawned worker:
//   - runs in its own process group, so signals reach whatever it forks,
//     and what is left of the group is killed when it exits; Stop also
//     kills, once the worker has exited, what it started outside the group;
//   - gets SIGKILL if the agent dies (Pdeathsig), and has no_new_privs set,
//     so no setuid binary can raise its privileges;
//   - runs as the AppGroup's user, or as nobody when the agent is root and
//     no user is given (workers never run as root, nor in root's group);
//   - WSGI: listens on a socket in a directory of its own, which the agent
//     takes back (its owner and mode) once the socket is bound, so that the
//     worker cannot put a link to another socket in its place for the agent
//     to connect to;
//   - gets a minimal environment (PATH, HOME, LANG, USER, LOGNAME,
//     PYTHONUNBUFFERED=1, the variables the agent sets for the launch,
//     then the app's env) rather than the agent's; the app's env may
//     replace PATH and the others of that base, never a variable the
//     agent sets for the launch: FERRY_REVISION, a WSGI worker's
//     FERRY_SOCKET, FERRY_APP_ROOT, FERRY_STARTUP_FILE and FERRY_READY_FD,
//     a Command's PORT (appEnv leaves the app's value out). Any other
//     name, FERRY_ ones too, is the app's;
//   - has its stdout and stderr logged line by line with its pid and
//     revision, and the last lines kept for spawn errors.
//
// Spawn returns once the worker is ready: for WSGI when the loader reports
// that the app is imported and its socket listens; for Command when a GET
// on the readiness path answers below 500, or else when the port accepts,
// and /proc does not show the socket listening on the port as another's
// (listener.go). No two Command workers of an agent are given one port
// (freePort holds it until the worker exits), and none of the kernel's
// ephemeral range; one that exits before it is ready, its port held by
// another socket, is spawned again on another. A failure (exit, import
// error, startTimeout) comes back as an *Error carrying the exit status and
// the process's last output lines.
//
// A WSGI app that has a readiness path is ready only once a GET on it,
// over the worker's socket, answers below 500 as well (wsgiready.go): an
// app may import fine and fail every request, as a Django project whose
// views, loaded at the first request, are broken.
//
// Pdeathsig is delivered when the thread that forked the child exits, and
// no_new_privs is a per-thread setting, so each worker is started and waited
// for by one goroutine locked to its own OS thread for the worker's whole
// life. That costs one thread per worker, bounded by maxProcesses.
package spawn
