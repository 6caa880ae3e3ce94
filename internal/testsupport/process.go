package testsupport

import (
	"os"
	"strconv"
	"strings"
)

// Running reports whether process pid runs: it exists and is not a
// zombie (exited, not yet reaped), as /proc/<pid>/stat's state says. A
// zombie holds no memory and serves nothing: a pool's "how many
// processes" counts what runs.
func Running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}
