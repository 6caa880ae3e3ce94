package proxy

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

// TestSpooledRead: whatever the body's size, the limit and the way the
// body arrives, reading the spooled body back gives every byte in order;
// memory holds at most SpoolMemory of it, a file only what is beyond; the
// rest streams past the limit, and only then.
func TestSpooledRead(t *testing.T) {
	dir := t.TempDir()
	sizes := []int{0, 1, 511, 512, 513, SpoolMemory - 1, SpoolMemory, SpoolMemory + 1, 100 << 10, 300 << 10}
	limits := []int64{1, 512, SpoolMemory - 1, SpoolMemory, SpoolMemory + 1, 100 << 10, 64 << 20}
	arrivals := map[string]func(io.Reader) io.Reader{
		"whole":      func(r io.Reader) io.Reader { return r },
		"byte-wise":  iotest.OneByteReader,
		"half-reads": iotest.HalfReader,
		"data+EOF":   iotest.DataErrReader,
	}
	for _, size := range sizes {
		body := make([]byte, size)
		r := rand.NewChaCha8([32]byte{byte(size)})
		_, _ = r.Read(body)
		for _, limit := range limits {
			for name, arrive := range arrivals {
				src := arrive(bytes.NewReader(body))
				sp := &spooled{dir: dir}
				length := int64(-1) // chunked, and declared:
				if name == "half-reads" {
					length = int64(size)
				}
				if int64(size) > limit && length >= 0 {
					continue // streamed, never spooled (spool)
				}
				if err := sp.read(src, src, length, limit); err != nil {
					t.Fatalf("size %d, limit %d, %s: %v", size, limit, name, err)
				}
				got, err := io.ReadAll(sp.reader())
				sp.close()
				switch {
				case err != nil || !bytes.Equal(got, body):
					t.Errorf("size %d, limit %d, %s: read back %d bytes (%v), want the %d sent", size, limit, name, len(got), err, size)
				case len(sp.mem) > SpoolMemory:
					t.Errorf("size %d, limit %d, %s: %d bytes in memory", size, limit, name, len(sp.mem))
				// Exactly limit+1 bytes may have come with their end.
				case sp.rest != nil && int64(size) <= limit, sp.rest == nil && int64(size) > limit+1:
					t.Errorf("size %d, limit %d, %s: streams the rest: %t", size, limit, name, sp.rest != nil)
				case (sp.file != nil) != (sp.size > SpoolMemory):
					t.Errorf("size %d, limit %d, %s: %d bytes spooled, a file: %t", size, limit, name, sp.size, sp.file != nil)
				case sp.size > limit+1:
					t.Errorf("size %d, limit %d, %s: %d bytes spooled", size, limit, name, sp.size)
				}
			}
		}
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("left in the directory: %v", names)
	}
}

// TestSpooledReadFailures: a client's error comes back as it was; a file
// that cannot be made leaves the body to stream, nothing lost.
func TestSpooledReadFailures(t *testing.T) {
	boom := errors.New("connection reset")
	sp := &spooled{dir: t.TempDir()}
	src := io.MultiReader(bytes.NewReader(make([]byte, 1000)), iotest.ErrReader(boom))
	if err := sp.read(src, src, -1, 64<<20); !errors.Is(err, boom) {
		t.Errorf("a failing body: %v, want its error", err)
	}

	body := patterned(200 << 10)
	sp = &spooled{dir: filepath.Join(t.TempDir(), "missing")}
	src = bytes.NewReader(body)
	if err := sp.read(src, src, int64(len(body)), 64<<20); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(sp.reader())
	if sp.fileErr == nil || sp.rest == nil || err != nil || !bytes.Equal(got, body) {
		t.Errorf("no file: error %v, streams %t; read back %d bytes (%v), want all %d", sp.fileErr, sp.rest != nil, len(got), err, len(body))
	}
}

// TestSpooledDiskBudget: bodies buffered at once hold no more of the disk
// than their shared budget; what does not fit streams, nothing lost; and
// each body gives back what it took when it is closed.
func TestSpooledDiskBudget(t *testing.T) {
	const budget = 100 << 10
	disk := NewBudget(budget)
	dir := t.TempDir()
	first, second := patterned(SpoolMemory+60<<10), patterned(SpoolMemory+60<<10)
	read := func(body []byte) *spooled {
		sp := &spooled{dir: dir, disk: disk}
		src := iotest.HalfReader(bytes.NewReader(body))
		if err := sp.read(src, src, -1, 64<<20); err != nil {
			t.Fatal(err)
		}
		return sp
	}
	a, b := read(first), read(second) // both open at once
	if a.rest != nil || a.taken != 60<<10 {
		t.Errorf("the first body: %d bytes in its file, streams %t; want all 60 KiB past memory in the file", a.taken, a.rest != nil)
	}
	if !errors.Is(b.fileErr, errDiskBudget) || b.rest == nil || b.taken > 40<<10 {
		t.Errorf("the second body: %d bytes in its file, streams %t (%v); want at most the 40 KiB left, the rest streamed", b.taken, b.rest != nil, b.fileErr)
	}
	if left := disk.Left(); left < 0 || a.taken+b.taken+left != budget {
		t.Errorf("the budget: %d left, %d and %d taken, of %d", left, a.taken, b.taken, budget)
	}
	for _, c := range []struct {
		sp   *spooled
		body []byte
	}{{a, first}, {b, second}} {
		if got, err := io.ReadAll(c.sp.reader()); err != nil || !bytes.Equal(got, c.body) {
			t.Errorf("read back %d bytes (%v), want the %d sent", len(got), err, len(c.body))
		}
		c.sp.close()
	}
	if disk.Left() != budget {
		t.Errorf("%d of %d left once both bodies are closed", disk.Left(), budget)
	}
}

func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7 / 3)
	}
	return b
}

// TestPrepareSpoolDir: the agent's own directory, private, emptied of
// what a dead agent left; nothing else in the parent is touched.
func TestPrepareSpoolDir(t *testing.T) {
	parent := t.TempDir()
	if err := os.Chmod(parent, os.ModeSticky|0o777); err != nil { // as /tmp
		t.Fatal(err)
	}
	other := filepath.Join(parent, "body-of-work.txt")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir, err := PrepareSpoolDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, "body-123")
	if err := os.WriteFile(left, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := PrepareSpoolDir(parent); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("a body left by a dead agent is still there: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	if fi, err := os.Stat(parent); err != nil || fi.Mode()&os.ModePerm != 0o777 || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("the parent's mode changed: %v, %v", fi.Mode(), err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file in the parent was touched: %v", err)
	}

	// A link in a shared parent, to have the agent chmod or empty
	// another directory, is refused.
	shared, target := t.TempDir(), t.TempDir()
	if err := os.Symlink(target, filepath.Join(shared, SpoolDirName)); err != nil {
		t.Fatal(err)
	}
	if _, err := PrepareSpoolDir(shared); err == nil {
		t.Error("a link to another directory was taken as the agent's own")
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() == 0o700 {
		t.Errorf("the link's target: %v, %v; want it untouched", fi.Mode(), err)
	}
}

// TestOpenUnlinked: where no file can be made without a name, the one made
// has its name removed at once, and holds what is written.
func TestOpenUnlinked(t *testing.T) {
	dir := t.TempDir()
	f, err := openUnlinked(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("names left in the directory: %v", names)
	}
	if _, err := f.Write([]byte("body")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := f.ReadAt(got, 0); err != nil || string(got) != "body" {
		t.Errorf("read back %q, %v", got, err)
	}
}
