package testsupport

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestWorkerDirs: WorkerDir and SharedDir are of the modes their users
// need, everyone may enter their parent, and each is gone, with what the
// test left in it, once the test has ended.
func TestWorkerDirs(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(testing.TB) string
		want fs.FileMode
	}{
		{"WorkerDir", WorkerDir, 0o755},
		{"SharedDir", SharedDir, 0o777},
	} {
		var dir string
		t.Run(tc.name, func(t *testing.T) {
			dir = tc.make(t)
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.IsDir() || fi.Mode().Perm() != tc.want {
				t.Errorf("%s: mode %v, want a directory of %v", dir, fi.Mode(), tc.want)
			}
			parent, err := os.Stat(filepath.Dir(dir))
			if err != nil {
				t.Fatal(err)
			}
			if parent.Mode().Perm()&0o001 == 0 {
				t.Errorf("%s: parent mode %v, which the worker's user may not enter", dir, parent.Mode())
			}
			if err := os.WriteFile(filepath.Join(dir, "left"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		})
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %s after the test ended: %v, want it removed", tc.name, dir, err)
		}
	}
}
