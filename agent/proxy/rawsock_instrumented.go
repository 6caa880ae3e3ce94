//go:build race || msan || asan

package proxy

import "syscall"

// rawRead and rawWrite, in a build with the race detector or a sanitizer,
// are syscall.Read and Write, which tell them what a raw system call would
// not: that read(2) wrote p's first n bytes and write(2) read them (a
// goroutine touching a buffer a read fills is a race they must report),
// and that a read comes after the writes before it (their I/O ordering,
// without which a goroutine that learns through a socket what another did
// would be reported racing with it). The runtime is told of these system
// calls: these builds are not for measuring it.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err != syscall.EINTR {
			return max(n, 0), errnoOf(err)
		}
	}
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, err := syscall.Write(int(fd), p)
		if err != syscall.EINTR {
			return max(n, 0), errnoOf(err)
		}
	}
}

func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return err.(syscall.Errno) // syscall.Read and Write return no other
}
