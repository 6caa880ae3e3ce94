package proxy

// HandedOff is how many connections the front end gave net/http.
func HandedOff(s *Server) int64 { return s.handedOff.Load() }

// WatchAfter is how long a request waits before its client is watched.
const WatchAfter = watchAfter
