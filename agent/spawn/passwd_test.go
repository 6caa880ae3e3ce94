package spawn

import (
	"errors"
	"os/user"
	"strings"
	"testing"
)

// TestFindUID: lookupUID's reading of a passwd file, built without cgo,
// finds a uid's entry as os/user does: the name of its gecos field before
// a comma, a line trimmed of blanks; it skips NIS entries (+ or -),
// comments, lines of fewer than seven fields or with a uid or gid that is
// no number, and reads past a line longer than its buffer; it says
// user.UnknownUserIdError for a uid with none.
func TestFindUID(t *testing.T) {
	long := strings.Repeat("x", 70<<10)
	passwd := `root:x:0:0:root:/root:/bin/bash
# a comment
+nis:x:1500:1500::/:/bin/sh
-nis2:x:1501:1501::/:/bin/sh
short:x:1502
#old:x:1000:1000:Old:/home/old:/bin/sh
#1000:x:1000:1000:Old:/home/old:/bin/sh
alice:x:1000:1001:Alice Liddell,Room 1,,:/home/alice:/bin/bash
homeless:x:1003:1003:::/bin/sh

   
	bob:x:1004:1004:Bob:/home/bob:/bin/sh  
six:x:1005:1005::/home/six
badgid:x:1006:staff::/home/badgid:/bin/sh
#` + long + `
longgecos:x:1007:1007:` + long + `:/home/longgecos:/bin/sh
after:x:1008:1008::/home/after:/bin/sh
last:x:1009:1009::/home/last:/bin/sh`
	for _, tt := range []struct {
		uid  string
		want *user.User // nil: no entry
	}{
		{"0", &user.User{Uid: "0", Gid: "0", Username: "root", Name: "root", HomeDir: "/root"}},
		{"1000", &user.User{Uid: "1000", Gid: "1001", Username: "alice", Name: "Alice Liddell", HomeDir: "/home/alice"}},
		{"1003", &user.User{Uid: "1003", Gid: "1003", Username: "homeless"}},
		{"1004", &user.User{Uid: "1004", Gid: "1004", Username: "bob", Name: "Bob", HomeDir: "/home/bob"}},
		{"1005", nil}, // six fields
		{"1006", nil}, // gid staff
		{"1007", &user.User{Uid: "1007", Gid: "1007", Username: "longgecos", Name: long, HomeDir: "/home/longgecos"}},
		{"1008", &user.User{Uid: "1008", Gid: "1008", Username: "after", HomeDir: "/home/after"}},
		{"1009", &user.User{Uid: "1009", Gid: "1009", Username: "last", HomeDir: "/home/last"}}, // no newline at the end
		{"1500", nil},
		{"1501", nil},
		{"1502", nil},
		{"65532", nil},
	} {
		got, err := findUID(strings.NewReader(passwd), tt.uid)
		switch {
		case tt.want == nil && !errors.As(err, new(user.UnknownUserIdError)):
			t.Errorf("uid %s: %s, %v; want user.UnknownUserIdError", tt.uid, brief(got), err)
		case tt.want != nil && (err != nil || got == nil || *got != *tt.want):
			t.Errorf("uid %s: %s, %v; want %s", tt.uid, brief(got), err, brief(tt.want))
		}
	}
}

// brief is u for a test's message, its Name cut short.
func brief(u *user.User) string {
	if u == nil {
		return "no user"
	}
	name := u.Name
	if len(name) > 20 {
		name = name[:20] + "..."
	}
	return "{" + strings.Join([]string{u.Username, u.Uid, u.Gid, name, u.HomeDir}, " ") + "}"
}
