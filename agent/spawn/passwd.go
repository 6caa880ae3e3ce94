package spawn

import (
	"bufio"
	"io"
	"os/user"
	"strconv"
	"strings"
)

// findUID is uid's entry in r, a passwd file, for lookupUID built without cgo
// (name:password:uid:gid:gecos:home:shell), or user.UnknownUserIdError.
// Entries whose name begins with + or - (NIS) are skipped, as os/user
// and glibc skip them.
func findUID(r io.Reader, uid string) (*user.User, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 6 || f[2] != uid || f[0] == "" || f[0][0] == '+' || f[0][0] == '-' {
			continue
		}
		name, _, _ := strings.Cut(f[4], ",")
		return &user.User{Uid: f[2], Gid: f[3], Username: f[0], Name: name, HomeDir: f[5]}, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(uid)
	return nil, user.UnknownUserIdError(n)
}
