package contract

import "net"

// UnlistedAddress says what ip is when the manager leaves a pool that
// reports it (the host of status.address) out of the AppGroup's Service:
// "not an IP address", "an IPv6 address" (Ferry's EndpointSlices are
// IPv4), or one the API server takes in no EndpointSlice ("the
// unspecified address", "a loopback address", "a link-local address").
// It is "" for an address the Service lists.
func UnlistedAddress(ip net.IP) string {
	switch {
	case ip == nil:
		return "not an IP address"
	case ip.To4() == nil:
		return "an IPv6 address"
	case ip.IsUnspecified():
		return "the unspecified address"
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "a link-local address"
	}
	return ""
}
