package freeport

import "net"

// On is a TCP port on ip that nothing listens on as it returns: the
// kernel's pick, listened on and closed.
func On(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Loopback is a TCP port on 127.0.0.1 that nothing listens on as it
// returns.
func Loopback() (int, error) { return On("127.0.0.1") }
