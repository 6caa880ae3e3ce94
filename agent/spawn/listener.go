package spawn

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// A Command worker's readiness probe connects to 127.0.0.1:$PORT. If
// another program took the port before the worker bound it, the probe
// reaches that program, and the pool would send the app's requests to it.
// listenerOwner tells the two apart from /proc. The socket listening on the
// port must have been made by the worker's user (workers run as their own
// user, never root, and cannot change it), and, where the agent may read
// the worker's file descriptors (which takes CAP_SYS_PTRACE when the
// worker is another user: the DaemonSet's agent does not have it), be an
// open file of the worker's: a process in its process group, or one it
// started (which may have left the group, as dumb-init's child does).

// owner is what /proc says of the socket listening on a worker's port.
type owner int

const (
	ownerUnknown owner = iota // no listener found, or made by the worker's user but its files cannot be read
	ownerWorker               // the worker holds it
	ownerOther                // another user made it, or nothing of the worker's holds it
)

// listenerOwner reports who holds the sockets that listen for
// 127.0.0.1:port, for the worker whose process (and process group) id is
// pid, running as uid.
func listenerOwner(pid, uid, port int) owner {
	listeners := listeningSockets(port)
	if len(listeners) == 0 {
		return ownerUnknown
	}
	workerUID := strconv.Itoa(uid)
	for _, by := range listeners {
		if by != workerUID {
			return ownerOther
		}
	}
	held, ok := workerSockets(pid)
	if !ok {
		return ownerUnknown
	}
	for inode := range listeners {
		if !held[inode] {
			return ownerOther
		}
	}
	return ownerWorker
}

// listenedByUser reports whether a socket of user uid listens on
// 127.0.0.1:port (listeningSockets).
func listenedByUser(port, uid int) bool {
	user := strconv.Itoa(uid)
	for _, by := range listeningSockets(port) {
		if by == user {
			return true
		}
	}
	return false
}

// listeningSockets are the TCP sockets that take connections to
// 127.0.0.1:port: their inodes, and the uid of the user who made each.
// IPv6 sockets count only when no IPv4 socket listens on the port: an IPv4
// one takes 127.0.0.1's connections first, and a socket on [::] shares
// the port with one only when it takes no IPv4 (IPV6_V6ONLY).
func listeningSockets(port int) map[string]string {
	for _, table := range tcpTables() {
		sockets := map[string]string{}
		for _, line := range strings.Split(table, "\n") {
			if inode, uid, ok := listenerOn(line, port); ok {
				sockets[inode] = uid
			}
		}
		if len(sockets) > 0 {
			return sockets
		}
	}
	return nil
}

// tcpTables are the texts of /proc/net/tcp and /proc/net/tcp6, in that
// order; one that cannot be read is left out.
func tcpTables() []string {
	var tables []string
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if b, err := os.ReadFile(file); err == nil {
			tables = append(tables, string(b))
		}
	}
	return tables
}

// tcpListen is the LISTEN state in /proc/net/tcp.
const tcpListen = "0A"

// listenRow is a listening socket, as a line of /proc/net/tcp or tcp6
// tells it.
type listenRow struct {
	inode, uid string
	ip         net.IP
	port       int
}

// takesLoopback: the socket takes connections to 127.0.0.1 (on its port).
func (r listenRow) takesLoopback() bool {
	return r.ip.IsUnspecified() || r.ip.Equal(net.IPv4(127, 0, 0, 1))
}

// takes: the socket takes connections to 127.0.0.1:port.
func (r listenRow) takes(port int) bool { return r.port == port && r.takesLoopback() }

// address is where the socket listens: "127.0.0.1:8000", "[::]:8000".
func (r listenRow) address() string {
	return net.JoinHostPort(r.ip.String(), strconv.Itoa(r.port))
}

// listenRows are the listening sockets of a text of /proc/net/tcp or
// tcp6; the header and the other sockets are left out.
func listenRows(table string) []listenRow {
	var rows []listenRow
	for _, line := range strings.Split(table, "\n") {
		if row, ok := parseListenRow(line); ok {
			rows = append(rows, row)
		}
	}
	return rows
}

// parseListenRow parses one line of /proc/net/tcp or tcp6 ("sl local rem
// st ... uid timeout inode"); false unless it is a listening socket.
func parseListenRow(line string) (listenRow, bool) {
	f := strings.Fields(line)
	if len(f) < 10 || f[3] != tcpListen {
		return listenRow{}, false
	}
	addr, p, ok := strings.Cut(f[1], ":")
	if !ok {
		return listenRow{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	ip := procIP(addr)
	if err != nil || ip == nil {
		return listenRow{}, false
	}
	return listenRow{inode: f[9], uid: f[7], ip: ip, port: int(port)}, true
}

// listenerOn parses one line of /proc/net/tcp or tcp6 and returns its
// inode and uid when it is a socket listening on port for 127.0.0.1.
func listenerOn(line string, port int) (inode, uid string, ok bool) {
	row, ok := parseListenRow(line)
	if !ok || !row.takes(port) {
		return "", "", false
	}
	return row.inode, row.uid, true
}

// procIP decodes an address of /proc/net/tcp: the kernel prints each 32-bit
// word of the network-order address as a number in the host's byte order.
func procIP(s string) net.IP {
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return nil
	}
	ip := make(net.IP, len(b))
	for i := 0; i < len(b); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(b[i:]))
	}
	return ip
}

// workerSockets are the socket inodes open in the worker's processes (its
// group, and its descendants); false when one of them cannot be read, as
// then nothing can be told. Listing a process's fds takes
// CAP_DAC_OVERRIDE when it is another user's, reading them ptrace access
// (CAP_SYS_PTRACE), which a root agent may lack.
func workerSockets(pid int) (map[string]bool, bool) {
	procs, err := processes()
	if err != nil {
		return nil, false
	}
	held := map[string]bool{}
	for _, p := range procs {
		if !workersProcess(procs, p, pid) {
			continue
		}
		dir := "/proc/" + strconv.Itoa(p.pid) + "/fd/"
		fds, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrPermission) {
			return nil, false
		}
		for _, fd := range fds { // none when the process has just exited
			link, err := os.Readlink(dir + fd.Name())
			if errors.Is(err, fs.ErrPermission) {
				return nil, false
			}
			if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
				held[strings.TrimSuffix(inode, "]")] = true
			}
		}
	}
	return held, true
}

// process is a line of /proc/PID/stat, the fields used here. start (in
// clock ticks since boot) tells a process from a later one given its pid.
type process struct {
	pid, ppid, pgrp int
	start           uint64
}

// processes reads every process's stat; those that exit meanwhile are
// left out.
func processes() (map[int]process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	procs := make(map[int]process, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readStat(pid); ok {
			procs[pid] = p
		}
	}
	return procs, nil
}

// workersProcess: p is the worker pid, in its process group, or started
// by one of its processes.
func workersProcess(procs map[int]process, p process, pid int) bool {
	for range len(procs) { // a bound on the walk up: /proc changes as it is read
		if p.pid == pid || p.pgrp == pid {
			return true
		}
		parent, ok := procs[p.ppid]
		if !ok {
			return false
		}
		p = parent
	}
	return false
}

// readStat parses /proc/PID/stat: "pid (comm) state ppid pgrp ...
// starttime ...", where comm may hold spaces and parentheses and starttime
// is field 22.
func readStat(pid int) (process, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return process{}, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return process{}, false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, state
	if len(f) < 20 {
		return process{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	start, err3 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return process{}, false
	}
	return process{pid: pid, ppid: ppid, pgrp: pgrp, start: start}, true
}

// A Command worker that is not ready in time because nothing accepted
// connections on 127.0.0.1:$PORT often listens, but elsewhere: a port of
// its own (8000, its framework's default), or [::1]. Its sockets tell
// where, for the message; read only once its startTimeout ran out, never
// while it is probed. The worker's processes are its process group and
// what they started: a shell that runs the app (sh -c "python3 -m
// http.server 8000") leaves the listener to its child.

// workerListens are the addresses that the worker pid's processes listen
// on, but that leave 127.0.0.1:port unanswered; nil when /proc cannot
// tell (workerSockets: another user's files the agent may not read).
func workerListens(pid, port int) []string {
	held, ok := workerSockets(pid)
	if !ok || len(held) == 0 {
		return nil
	}
	return listensOf(tcpTables(), held, port)
}

// listensOf are the addresses of the listening sockets in tables (texts
// of /proc/net/tcp and tcp6) whose inodes are held, sorted, each once,
// but for those that take 127.0.0.1:port (one bound since the last probe
// is no sign of a mistake).
func listensOf(tables []string, held map[string]bool, port int) []string {
	var addrs []string
	for _, table := range tables {
		for _, row := range listenRows(table) {
			if held[row.inode] && !row.takes(port) {
				addrs = append(addrs, row.address())
			}
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs)
}

// maxListensShown bounds the addresses listensInstead names.
const maxListensShown = 3

// listensInstead words where a worker that left 127.0.0.1:port unanswered
// listens instead (addrs; none: ""), and what to do about it.
func listensInstead(addrs []string, port int) string {
	if len(addrs) == 0 {
		return ""
	}
	list := strings.Join(addrs[:min(len(addrs), maxListensShown)], ", ")
	if n := len(addrs) - maxListensShown; n > 0 {
		list += fmt.Sprintf(" and %d more", n)
	}
	fix := fmt.Sprintf("make it listen on $PORT (%d)", port)
	for _, a := range addrs {
		if strings.HasSuffix(a, ":"+strconv.Itoa(port)) { // the port, on another address
			fix = fmt.Sprintf("make it listen on 127.0.0.1 (or every address) at $PORT (%d)", port)
		}
	}
	return "it listens on " + list + " instead; " + fix
}
