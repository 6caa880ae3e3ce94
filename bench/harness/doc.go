// Package harness runs Ferry's benchmarks against the peers (Passenger open
// source, gunicorn, uWSGI, nginx) and records raw results; package
// bench/benchdoc turns them into docs/benchmarks.md. bench/run.sh installs
// the peers and drives both through the ferrybench command.
//
// # Scenarios
//
//   - restart: the hello WSGI example (BOOT_DELAY 2 s, REQUEST_DELAY_MS 5),
//     4 worker processes, 16 closed-loop keep-alive clients for 25 s, a
//     restart triggered at 8 s; Ferry's rolling restart (also at 256 clients,
//     and its Blocking strategy), Passenger's restart-app and restart.txt,
//     gunicorn's HUP, uWSGI's chain reload and HUP. It follows the peer
//     baseline's protocol (shared/peers-baseline.md) exactly: a fresh server
//     per run, wait until every worker PID answered, wait 1 s, run the load.
//   - proxy: a minimal Go upstream (bench/cmd/upstream) reached directly,
//     through Ferry's proxy (a Command AppGroup of one process) and through
//     nginx as a keep-alive reverse proxy, at fixed concurrencies, with
//     loadgen and, when installed, wrk.
//   - wsgi: the hello app with no delays, 4 processes, 16 clients for 10 s,
//     under Ferry, Passenger, gunicorn and uWSGI.
//   - controlplane: the real manager and three agents on the real test API
//     server (internal/localstack), the agents simulating their workers
//     (--simulate-workers); 1000 AppGroups (100 in a smoke run) created,
//     then every revision bumped at once; time to all Ready and to all
//     rolled out, the manager's and the API server's request counts, the
//     manager's CPU time and peak RSS.
//
// # Results
//
// Each scenario writes RESULTS/SCENARIO/scenario.json (a [ScenarioResult]:
// the machine, the exact commands, every run's loadgen report without its
// per-second series) and, per configuration and run,
// RESULTS/SCENARIO/CONFIG/run-N/ with report.json (the full loadgen report),
// the server's log and, for restarts, records.csv (one line per request)
// and procs.csv (worker processes alive over time), which bench/plot.py
// draws.
//
// # Processes
//
// Every server runs in its own process group with a marker variable in its
// environment. Stopping sends the peer's own stop signal, waits, kills the
// group, and then sweeps /proc for any process that still carries the
// marker (Passenger's watchdog daemonizes out of the group) or names the
// run's directory on its command line; what the sweep had to kill is
// recorded as leftovers. Ports come from the kernel (bind to port 0).
//
// Worker processes are counted by sampling /proc every 20 ms: the children
// of the process that parents the workers (found from a worker PID that
// answered) whose executable is the workers' executable.
package harness
