package spawn

import (
	"errors"
	"os/user"
	"strings"
	"testing"
)

// TestFindUID: lookupUID's reading of a passwd file, built without cgo,
// finds a uid's entry as os/user does (the name of its gecos field before
// a comma), skips NIS entries (+ or -) and short lines, and says
// user.UnknownUserIdError for a uid with none.
func TestFindUID(t *testing.T) {
	const passwd = `root:x:0:0:root:/root:/bin/bash
# a comment
+nis:x:1500:1500::/:/bin/sh
-nis2:x:1501:1501::/:/bin/sh
short:x:1502
alice:x:1000:1001:Alice Liddell,Room 1,,:/home/alice:/bin/bash
homeless:x:1003:1003:::/bin/sh
`
	for _, tt := range []struct {
		uid  string
		want *user.User // nil: no entry
	}{
		{"0", &user.User{Uid: "0", Gid: "0", Username: "root", Name: "root", HomeDir: "/root"}},
		{"1000", &user.User{Uid: "1000", Gid: "1001", Username: "alice", Name: "Alice Liddell", HomeDir: "/home/alice"}},
		{"1003", &user.User{Uid: "1003", Gid: "1003", Username: "homeless"}},
		{"1500", nil},
		{"1501", nil},
		{"1502", nil},
		{"65532", nil},
	} {
		got, err := findUID(strings.NewReader(passwd), tt.uid)
		switch {
		case tt.want == nil && !errors.As(err, new(user.UnknownUserIdError)):
			t.Errorf("uid %s: %+v, %v; want user.UnknownUserIdError", tt.uid, got, err)
		case tt.want != nil && (err != nil || *got != *tt.want):
			t.Errorf("uid %s: %+v, %v; want %+v", tt.uid, got, err, tt.want)
		}
	}
}
