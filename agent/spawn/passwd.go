package spawn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os/user"
	"strconv"
	"strings"
)

// Fields of a passwd entry (name:password:uid:gid:gecos:home:shell).
const (
	passwdName = 0
	passwdUID  = 2
)

// findUID is uid's entry in r, a passwd file, for lookupUID built without
// cgo, or user.UnknownUserIdError.
func findUID(r io.Reader, uid string) (*user.User, error) {
	u, err := findEntry(r, passwdUID, uid)
	if u == nil && err == nil {
		n, _ := strconv.Atoi(uid)
		err = user.UnknownUserIdError(n)
	}
	return u, err
}

// findEntry is the entry of r, a passwd file, whose field is value, or
// nil. It reads r as os/user does built without cgo (findUserId), so
// that the agent's binaries see the entries glibc would: a line is
// trimmed of blanks; an empty one, a comment (#), one of fewer than seven
// fields, or one whose uid or gid is not a number is no entry; nor is a
// NIS one, whose name begins with + or -, which glibc skips too.
func findEntry(r io.Reader, field int, value string) (*user.User, error) {
	rd := bufio.NewReader(r)
	for {
		line, err := readPasswdLine(rd)
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if u := parseEntry(line); u != nil && passwdField(u, field) == value {
			return u, nil
		}
	}
}

// readPasswdLine is rd's next line, trimmed, read only as far as its
// first seven fields: the rest of a line longer than rd's buffer (a gecos
// field of 70 KiB) is skipped, as os/user does, rather than taken for an
// error that ends the search, as bufio.Scanner's ErrTooLong would be.
func readPasswdLine(rd *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, more, err := rd.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, chunk...)
		if !more {
			return bytes.TrimSpace(line), nil
		}
		if bytes.Count(line, []byte{':'}) >= 6 {
			return bytes.TrimSpace(line), skipRestOfLine(rd)
		}
	}
}

// skipRestOfLine reads rd past the end of the line it is in; reaching the
// end of rd there is no error: the line read so far is the file's last.
func skipRestOfLine(rd *bufio.Reader) error {
	for more := true; more; {
		var err error
		if _, more, err = rd.ReadLine(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	return nil
}

// parseEntry is line's entry, or nil when it is none (findEntry). The
// user's Name is its gecos field up to the first comma, as os/user takes it.
func parseEntry(line []byte) *user.User {
	if len(line) == 0 || line[0] == '#' {
		return nil
	}
	f := strings.SplitN(string(line), ":", 7)
	if len(f) < 7 || f[0] == "" || f[0][0] == '+' || f[0][0] == '-' {
		return nil
	}
	if _, err := strconv.Atoi(f[2]); err != nil {
		return nil
	}
	if _, err := strconv.Atoi(f[3]); err != nil {
		return nil
	}
	name, _, _ := strings.Cut(f[4], ",")
	return &user.User{Uid: f[2], Gid: f[3], Username: f[0], Name: name, HomeDir: f[5]}
}

// passwdField is u's field, one of those findEntry looks for.
func passwdField(u *user.User, field int) string {
	if field == passwdName {
		return u.Username
	}
	return u.Uid
}
