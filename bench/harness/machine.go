package harness

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a scenario ran, read at run time.
type Machine struct {
	Cores    int    `json:"cores"`
	CPU      string `json:"cpu"`
	MemoryKB int64  `json:"memory_kb"`
	Kernel   string `json:"kernel"`
	OS       string `json:"os"`
	// LoadBefore is /proc/loadavg when the scenario started: other work on
	// the machine shows here.
	LoadBefore string `json:"load_before"`
	Python     string `json:"python"`
	Go         string `json:"go"`
	Ferry      string `json:"ferry"`
	// Commit is the repository's HEAD, with "-dirty" for uncommitted changes.
	Commit string `json:"commit"`
	// Packages maps Debian package names to their installed versions.
	Packages map[string]string `json:"packages"`
}

// DebianPackages are the packages whose versions the report shows.
var DebianPackages = []string{"passenger", "gunicorn", "uwsgi", "uwsgi-plugin-python3", "nginx-light", "nginx", "wrk", "python3-matplotlib"}

func readMachine(ctx context.Context, agent, repo string) Machine {
	m := Machine{
		Cores:      runtime.NumCPU(),
		Kernel:     firstLine(readFile("/proc/sys/kernel/osrelease")),
		LoadBefore: loadavg(),
		Python:     output(ctx, "/usr/bin/python3", "--version"),
		Go:         output(ctx, "go", "version"),
		Ferry:      output(ctx, agent, "version"),
		Commit:     output(ctx, "git", "-C", repo, "describe", "--always", "--dirty", "--abbrev=12"),
		Packages:   map[string]string{},
	}
	if m.Go == "" {
		m.Go = runtime.Version()
	}
	for _, line := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			m.CPU = strings.TrimSpace(v)
			break
		}
	}
	for _, line := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			m.MemoryKB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(readFile("/etc/os-release")))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			m.OS = strings.Trim(v, `"`)
		}
	}
	if v := firstLine(readFile("/etc/debian_version")); v != "" {
		m.OS += " (debian_version " + v + ")"
	}
	for _, p := range DebianPackages {
		v := output(ctx, "dpkg-query", "-W", "-f=${Status}|${Version}", p)
		if st, ver, ok := strings.Cut(v, "|"); ok && strings.HasPrefix(st, "install ok installed") {
			m.Packages[p] = ver
		}
	}
	return m
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	return strings.Join(f[:min(3, len(f))], " ")
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// output runs a command briefly and returns its trimmed first line of
// output, "" on failure.
func output(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return ""
	}
	return firstLine(string(out))
}
