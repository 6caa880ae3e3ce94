// Command loadgen runs HTTP load, optionally triggers a command part-way
// through (typically a restart), and prints the report defined by the peer
// baseline. The logic lives in package bench/loadgen; this only wires flags.
//
//	loadgen -c 16 -d 25s -url http://127.0.0.1:8080/ -trigger-at 8s -trigger 'kill -HUP 1234'
//
// Durations accept Go syntax ("8s", "1m30s") or bare seconds ("8", "0.5").
// The trigger's output goes to stderr, the report to stdout. The exit status
// is 0 even if requests failed (the report says so); 2 for usage errors, 1
// if no request completed or an output file could not be written.
package main
