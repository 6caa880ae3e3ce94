package freeport

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

func TestParseRange(t *testing.T) {
	for in, want := range map[string]portRange{"32768\t60999\n": {32768, 60999}, "1024 65535": {1024, 65535}} {
		if got, err := parseRange(in); err != nil || got != want {
			t.Errorf("parseRange(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "32768", "a b", "1 2 3"} {
		if got, err := parseRange(in); err == nil {
			t.Errorf("parseRange(%q) = %v, want an error", in, got)
		}
	}
}

func TestOutside(t *testing.T) {
	for _, tc := range []struct {
		cut  portRange
		want []portRange
	}{
		{portRange{32768, 60999}, []portRange{{61000, 65535}}}, // Linux's default
		{portRange{1024, 65535}, nil},                          // no room
		{portRange{49152, 65535}, nil},
		{portRange{50000, 60000}, []portRange{{49152, 49999}, {60001, 65535}}},
		{portRange{55000, 65535}, []portRange{{49152, 54999}}},
		{portRange{1024, 4999}, []portRange{{49152, 65535}}},
	} {
		if got := outside(dynamic, tc.cut); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("outside(%v, %v) = %v, want %v", dynamic, tc.cut, got, tc.want)
		}
	}
}

func TestDraw(t *testing.T) {
	rs := []portRange{{10, 12}, {20, 21}}
	for i, want := range []int{10, 11, 12, 20, 21} {
		got, ok := draw(rs, func(n int) int {
			if n != 5 {
				t.Fatalf("drawn from %d ports, want 5", n)
			}
			return i
		})
		if !ok || got != want {
			t.Errorf("draw %d = %d, %v; want %d", i, got, ok, want)
		}
	}
	if _, ok := draw(nil, func(int) int { return 0 }); ok {
		t.Error("a port drawn from no range")
	}
}

// TestSparePortIsOutsideTheEphemeralRange: the port given is one no
// outgoing connection of this machine is given, and one the caller can
// listen on.
func TestSparePortIsOutsideTheEphemeralRange(t *testing.T) {
	kernel, err := readEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	if len(outside(dynamic, kernel)) == 0 {
		t.Fatalf("this machine's ephemeral range %v leaves no spare port; Spare is On here", kernel)
	}
	for range 50 {
		port, err := Spare("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if port >= kernel.first && port <= kernel.last || port < dynamic.first {
			t.Fatalf("port %d: in the ephemeral range %v, or below the dynamic range", port, kernel)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("listening on the port given, %d: %v", port, err)
		}
		_ = l.Close()
	}
}

// TestSpareSkipsATakenPort: a port something listens on is not given,
// however often it is drawn: when no spare port is free, the port is the
// kernel's pick.
func TestSpareSkipsATakenPort(t *testing.T) {
	port, err := Spare("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	saved := dynamic
	dynamic = portRange{port, port} // every draw is the taken port
	defer func() { dynamic = saved }()
	if got, err := Spare("127.0.0.1"); err != nil || got == port {
		t.Fatalf("Spare = %d, %v; want a port but %d, which is listened on", got, err, port)
	}
}

func TestParseReserved(t *testing.T) {
	for in, want := range map[string][]portRange{
		"\n":                    nil,
		"8080\n":                {{8080, 8080}},
		"8080,61000-61100\n":    {{8080, 8080}, {61000, 61100}},
		"x,61000-y,62000-62001": {{62000, 62001}},
	} {
		if got := parseReserved(in); !reflect.DeepEqual(got, want) {
			t.Errorf("parseReserved(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestSpareSkipsAReservedPort: a port the machine reserves for a service
// is not given, though nothing listens there yet.
func TestSpareSkipsAReservedPort(t *testing.T) {
	port, err := Spare("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	reserved := filepath.Join(t.TempDir(), "ip_local_reserved_ports")
	if err := os.WriteFile(reserved, []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	savedFile, savedRange := reservedFile, dynamic
	reservedFile, dynamic = reserved, portRange{port, port} // every draw is the reserved port
	defer func() { reservedFile, dynamic = savedFile, savedRange }()
	if got, err := Spare("127.0.0.1"); err != nil || got == port {
		t.Fatalf("Spare = %d, %v; want a port but %d, which is reserved", got, err, port)
	}
}
