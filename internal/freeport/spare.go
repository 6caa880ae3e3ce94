package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// portRange is the ports from first to last, both included.
type portRange struct{ first, last int }

// dynamic is IANA's dynamic range, which no service registers.
var dynamic = portRange{49152, 65535}

// ephemeralFile is where Linux says which ports it gives outgoing
// connections (and listeners on port 0).
const ephemeralFile = "/proc/sys/net/ipv4/ip_local_port_range"

// reservedFile lists the ports the kernel gives no outgoing connection
// because a service of the machine's is to listen on them; Spare leaves
// them alone too.
var reservedFile = "/proc/sys/net/ipv4/ip_local_reserved_ports"

// spareTries bounds Spare's draws before it asks the kernel instead.
const spareTries = 32

// Spare is a TCP port on ip that nothing listens on as it returns, drawn
// at random from the dynamic range (49152-65535) outside the kernel's
// ephemeral range (ip_local_port_range; 32768-60999 by default, which
// leaves 61000-65535). The kernel gives ports of its ephemeral range to
// outgoing connections too: one from ip may take a port On gave before
// its caller binds it, and a machine with many connections open (a node
// proxying thousands) makes that likely. No outgoing connection is given
// a port outside the range. Ports below the dynamic range are left alone:
// services register and listen there (Kubernetes' NodePorts among them).
// Ports the machine reserves (ip_local_reserved_ports) are not given.
// When the range leaves no spare port, or every draw is taken, or the
// range cannot be read, it is On(ip).
func Spare(ip string) (int, error) {
	kernel, err := readEphemeral()
	if err != nil {
		return On(ip)
	}
	spare := outside(dynamic, kernel)
	reserved := readReserved()
	for range spareTries {
		port, ok := draw(spare, rand.IntN)
		if !ok {
			break
		}
		if within(reserved, port) {
			continue
		}
		taken, err := InUse(ip, port)
		if err != nil {
			return 0, err
		}
		if !taken {
			return port, nil
		}
	}
	return On(ip)
}

// InUse reports whether another socket holds port on ip: whether a
// listen there fails with "address already in use" (or, for a port kept
// from this user, is refused). A listener holds it, and so does an
// outgoing connection given the port.
func InUse(ip string, port int) (bool, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err == nil {
		_ = l.Close()
		return false, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES) {
		return true, nil
	}
	return false, err
}

// readEphemeral reads the kernel's ephemeral range.
func readEphemeral() (portRange, error) {
	b, err := os.ReadFile(ephemeralFile)
	if err != nil {
		return portRange{}, err
	}
	return parseRange(string(b))
}

// parseRange parses ip_local_port_range: "32768\t60999\n".
func parseRange(s string) (portRange, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return portRange{}, fmt.Errorf("%s: %q is not two ports", ephemeralFile, s)
	}
	first, err1 := strconv.Atoi(f[0])
	last, err2 := strconv.Atoi(f[1])
	if err := errors.Join(err1, err2); err != nil {
		return portRange{}, fmt.Errorf("%s: %w", ephemeralFile, err)
	}
	return portRange{first, last}, nil
}

// readReserved reads the ports the machine reserves; none when it cannot.
func readReserved() []portRange {
	b, err := os.ReadFile(reservedFile)
	if err != nil {
		return nil
	}
	return parseReserved(string(b))
}

// parseReserved parses ip_local_reserved_ports: "8080,61000-61100\n";
// what does not parse is left out.
func parseReserved(s string) []portRange {
	var rs []portRange
	for _, f := range strings.Split(strings.TrimSpace(s), ",") {
		a, b, isRange := strings.Cut(f, "-")
		if !isRange {
			b = a
		}
		first, err1 := strconv.Atoi(a)
		last, err2 := strconv.Atoi(b)
		if err1 == nil && err2 == nil {
			rs = append(rs, portRange{first, last})
		}
	}
	return rs
}

// within reports whether port is of one of rs.
func within(rs []portRange, port int) bool {
	for _, r := range rs {
		if port >= r.first && port <= r.last {
			return true
		}
	}
	return false
}

// outside is the ports of r not in cut: none, one range or two.
func outside(r, cut portRange) []portRange {
	var rs []portRange
	if below := (portRange{r.first, min(r.last, cut.first-1)}); below.first <= below.last {
		rs = append(rs, below)
	}
	if above := (portRange{max(r.first, cut.last+1), r.last}); above.first <= above.last {
		rs = append(rs, above)
	}
	return rs
}

// draw is a port of rs, the nth of them all by intN (rand.IntN); false
// when rs has none.
func draw(rs []portRange, intN func(int) int) (int, bool) {
	n := 0
	for _, r := range rs {
		n += r.last - r.first + 1
	}
	if n == 0 {
		return 0, false
	}
	i := intN(n)
	for _, r := range rs {
		if size := r.last - r.first + 1; i >= size {
			i -= size
			continue
		}
		return r.first + i, true
	}
	return 0, false // not reached
}
