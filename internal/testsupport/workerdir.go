package testsupport

import (
	"os"
	"testing"
)

// WorkerDir is a directory the worker's user (nobody, under a root agent)
// may enter and read, removed as the test ends. Not t.TempDir: its parent
// only the test's user may enter.
func WorkerDir(t testing.TB) string {
	t.Helper()
	return workerDir(t, 0o755)
}

// SharedDir is a WorkerDir the worker's user may also write to: where a
// worker and the test leave each other files (a gate, a flag, a pid).
func SharedDir(t testing.TB) string {
	t.Helper()
	return workerDir(t, 0o777)
}

// workerDir is a new directory of mode perm under os.TempDir (a
// directory anyone may enter), removed as the test ends.
func workerDir(t testing.TB, perm os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ferry-worker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	return dir
}
