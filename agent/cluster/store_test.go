package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"

	"github.com/go-logr/logr"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestStoreLongNames: pools whose namespace and name are as long as the API
// allows are saved and loaded back, each under its own file, as short ones
// are; removing one leaves the others.
func TestStoreLongNames(t *testing.T) {
	s, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ns := strings.Repeat("n", 63)
	long := strings.Repeat("a", 253)
	keys := []types.NamespacedName{
		{Namespace: "default", Name: "hello-node-1"},
		{Namespace: ns, Name: long},
		{Namespace: ns, Name: long[:252] + "b"}, // cut to the same prefix
	}
	for i, key := range keys {
		pp := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
			Spec: ferryv1.ProcessPoolSpec{NodeName: "node-1", Revision: strings.Repeat("r", i+1)}}
		if err := s.save(pp); err != nil {
			t.Fatalf("save %s: %v", key, err)
		}
		if base := filepath.Base(s.path(key)); len(base)+len(".tmp") > 255 {
			t.Errorf("%s: file name of %d bytes", key, len(base))
		}
	}
	loaded, errs := s.load()
	if len(errs) != 0 || len(loaded) != len(keys) {
		t.Fatalf("loaded %d pools (errors %v), want %d", len(loaded), errs, len(keys))
	}
	byKey := map[types.NamespacedName]string{}
	for _, pp := range loaded {
		byKey[types.NamespacedName{Namespace: pp.Namespace, Name: pp.Name}] = pp.Spec.Revision
	}
	for i, key := range keys {
		if got := byKey[key]; got != strings.Repeat("r", i+1) {
			t.Errorf("%s loaded with revision %q", key, got)
		}
	}
	// A name that fit keeps the file name it always had (an upgraded agent
	// finds and replaces the file an older one saved).
	fits := types.NamespacedName{Namespace: "default", Name: strings.Repeat("f", 230)}
	if got, want := filepath.Base(s.path(fits)), "default_"+fits.Name+".json"; got != want {
		t.Errorf("a name that fits: file %s, want %s", got, want)
	}
	if err := s.remove(keys[1]); err != nil {
		t.Fatal(err)
	}
	if loaded, _ := s.load(); len(loaded) != 2 {
		t.Errorf("%d pools left after removing one of 3", len(loaded))
	}
}

// TestStoreRemoveIf: removeIf removes a pool's saved spec only when it is
// that pool's (its UID), or saved without a UID; a new pool of the same
// name saved since, over the caller's, keeps its spec, which its own
// removal then removes. Unparsable files go; none is no error.
func TestStoreRemoveIf(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	for _, tc := range []struct {
		name    string
		over    []types.UID // pools of these UIDs saved first, in turn
		saved   string      // the file: a pool of this UID, or raw text with raw
		raw     bool
		uid     types.UID // the caller's pool
		removed bool
	}{
		{name: "the caller's", saved: "u1", uid: "u1", removed: true},
		{name: "a new pool's of the name", saved: "u2", uid: "u1"},
		{name: "a new pool's, saved over the caller's", over: []types.UID{"u1"}, saved: "u2", uid: "u1"},
		{name: "a new pool's, saved over the caller's, removed by it", over: []types.UID{"u1"}, saved: "u2", uid: "u2", removed: true},
		{name: "saved without a UID", saved: "", uid: "u1", removed: true},
		{name: "the caller resumed without a UID, saved without", saved: "", uid: "", removed: true},
		{name: "the caller resumed without a UID, a new pool's", saved: "u2", uid: ""},
		{name: "not JSON", saved: "{", raw: true, uid: "u1", removed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := newStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for _, uid := range tc.over {
				if err := s.save(poolOf(key, uid)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.raw {
				err = os.WriteFile(s.path(key), []byte(tc.saved), 0o600)
			} else {
				err = s.save(poolOf(key, types.UID(tc.saved)))
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.removeIf(key, tc.uid); err != nil {
				t.Fatal(err)
			}
			_, err = os.Stat(s.path(key))
			if removed := errors.Is(err, fs.ErrNotExist); removed != tc.removed {
				t.Fatalf("removed: %v (%v), want %v", removed, err, tc.removed)
			}
			if got := savedUIDs(t, s); !tc.removed && !slices.Equal(got, []types.UID{types.UID(tc.saved)}) {
				t.Errorf("saved after the removal: %v, want the pool of UID %q's", got, tc.saved)
			}
		})
	}
	s, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.removeIf(key, "u1"); err != nil {
		t.Errorf("removeIf with nothing saved: %v", err)
	}
}

// poolOf is a pool of key with UID uid.
func poolOf(key types.NamespacedName, uid types.UID) *ferryv1.ProcessPool {
	return &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, UID: uid},
		Spec: ferryv1.ProcessPoolSpec{NodeName: "node-1"}}
}

// save writes pp as saveIfChanged would, whatever the store's record
// says: the tests' way to place a spec on disk (the agent saves only
// through saveIfChanged).
func (s *store) save(pp *ferryv1.ProcessPool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked(pp)
}

// recordOffDisk says how the store's record of key's saved spec, by which
// saveIfChanged skips a write, differs from the file on disk; empty when
// they agree: no record and no file, or the record of the pool whose
// spec the file holds (its UID and generation).
func recordOffDisk(st *store, key types.NamespacedName) string {
	st.mu.Lock()
	saved, recorded := st.saved[key]
	st.mu.Unlock()
	file, readErr, _ := readSpec(st.path(key))
	switch onDisk := readErr == nil; {
	case recorded && !onDisk:
		return fmt.Sprintf("the saved spec removed (%v), yet the store's record still says the spec of %+v is on disk:"+
			" were the reconcile loop to hand the agent that pool again, saveIfChanged would not write its spec", readErr, saved)
	case !recorded && onDisk:
		return "the saved spec kept, yet the store forgot its record: the next reconcile writes the spec to disk again"
	case recorded && file != nil && !saved.holds(file):
		return fmt.Sprintf("the store's record says the spec of %+v is on disk, where the pool of UID %q's is:"+
			" a reconcile of the one on record would not write its spec", saved, file.UID)
	}
	return ""
}

// savedUIDs are the UIDs of the pools s has saved.
func savedUIDs(t *testing.T, s *store) []types.UID {
	t.Helper()
	loaded, errs := s.load()
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	var uids []types.UID
	for _, pp := range loaded {
		uids = append(uids, pp.UID)
	}
	return uids
}

// TestSaveIfChangedNewPoolOfTheName: a new pool of a saved pool's name is
// saved even at the same generation: the reconcile loop may not have
// seen the old one's deletion (a relist that replaced it), and once
// saved its spec only by name and generation, leaving the old pool's on
// disk for a restart without the API server to resume.
func TestSaveIfChangedNewPoolOfTheName(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	st, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{store: st, log: logr.Discard()}
	for _, uid := range []types.UID{"u1", "u2"} {
		pp := poolOf(key, uid)
		pp.Generation = 1
		a.saveIfChanged(key, pp)
		if got := savedUIDs(t, st); !slices.Equal(got, []types.UID{uid}) {
			t.Errorf("after saving the pool of UID %s: saved %v", uid, got)
		}
	}
}

// TestStoreSaveWhileRemoveIf: a new pool's spec saved while removeIf
// removes the old pool's of the same name stays. removeIf reads the file,
// finds the old pool's, and removes it: a save landing between the read
// and the removal would be removed as the old pool's, leaving nothing for
// an agent restarted without the API server to resume. The store's
// afterRead hook starts the save in that span: where it can take store.mu
// (removeIf holds none, the bug) it saves there and then, landing in the
// span, every run; else in a goroutine, which store.mu holds back until
// the removal is done.
func TestStoreSaveWhileRemoveIf(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	s, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	old, replacement := poolOf(key, "u1"), poolOf(key, "u2")
	if err := s.save(old); err != nil {
		t.Fatal(err)
	}
	hooked := false
	saveDone := make(chan struct{})
	var saveErr error
	save := func() {
		defer close(saveDone)
		saveErr = s.save(replacement)
	}
	s.afterRead = func() {
		hooked = true
		nowUnlessHeld(&s.mu, save) // removeIf holding no lock: in its span
	}
	if err := s.removeIf(key, old.UID); err != nil {
		t.Fatalf("removeIf: %v", err)
	}
	if !hooked {
		t.Fatal("removeIf did not call afterRead between its read and its removal")
	}
	<-saveDone
	if saveErr != nil {
		t.Fatalf("save: %v", saveErr)
	}
	if got := savedUIDs(t, s); !slices.Equal(got, []types.UID{replacement.UID}) {
		t.Errorf("saved after the new pool's save, begun between removeIf's read of the old pool's spec and its removal: %v, want %v",
			got, []types.UID{replacement.UID})
	}
}

// TestSaveIfChangedWhileRemoved: the store's record of a saved spec, by
// which saveIfChanged skips a write, matches the disk whatever the
// interleaving of the reconcile loop's save and a reporter's removal of
// the same pool's spec: here the removal (store.removeIf itself, or
// stopGone, the agent not synced and the running pool still running the
// pool its read found gone) begins between the save's write and its
// record, waits for the record, and takes both; the pool's next
// saveIfChanged writes its spec again.
//
// With the record kept apart from the write (the agent's own map, under
// its mutex), the removal could land in that span, and the record then
// said a removed spec was on disk. Only the record of the pool the
// removal was about could be so wrong (one read gone by name, or
// deleted): a new pool's spec of the name is kept, and its record was
// kept or forgotten, at worst a write more. And that wrong record mattered
// only were a lagging cache to hand the reconcile loop that same pool
// again, its UID and generation: its spec would not be written back, and
// an agent restarted without the API server would not resume it.
//
// The store's afterWrite hook starts the removal in that span, as
// TestStoreSaveWhileRemoveIf does: where it can take store.mu (the save's
// write and record not in one hold, the bug) it removes there and then,
// every run; else in a goroutine, which store.mu holds back until the
// record is written.
func TestSaveIfChangedWhileRemoved(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	for name, remove := range map[string]func(a *Agent, pp *ferryv1.ProcessPool) error{
		"store.removeIf": func(a *Agent, pp *ferryv1.ProcessPool) error { return a.store.removeIf(key, pp.UID) },
		// stopGone removes the spec of the pool the running pool ran as
		// its read began: u1's, the one saved.
		"stopGone": func(a *Agent, pp *ferryv1.ProcessPool) error {
			a.stopGone(a.pools[key], pp.UID, false)
			a.wg.Wait()
			if a.pools[key] != nil {
				return errors.New("the pool read gone runs on")
			}
			return nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := newStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			a := &Agent{store: st, log: logr.Discard(), pools: map[types.NamespacedName]*runningPool{},
				unlabelled: map[types.NamespacedName]bool{}, draining: map[types.UID]bool{},
				queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName]())}
			t.Cleanup(a.queue.ShutDown)
			pp := poolOf(key, "u1")
			pp.Generation = 1
			a.pools[key] = stoppableRunningPool(a, pp)
			removed := make(chan struct{})
			var removeErr error
			removal := func() {
				defer close(removed)
				removeErr = remove(a, pp)
			}
			st.afterWrite = func() {
				st.afterWrite = nil            // the one save
				nowUnlessHeld(&st.mu, removal) // the write and record not in one hold: between them
			}
			a.saveIfChanged(key, pp)
			<-removed
			if removeErr != nil {
				t.Fatalf("%s: %v", name, removeErr)
			}
			if _, err := os.Stat(st.path(key)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the pool's saved spec after its removal: %v, want it removed", err)
			}
			if off := recordOffDisk(st, key); off != "" {
				t.Errorf("after a removal begun between the save's write and its record: %s", off)
			}
			a.saveIfChanged(key, pp)
			if got := savedUIDs(t, st); !slices.Equal(got, []types.UID{pp.UID}) {
				t.Errorf("saved at the pool's next reconcile, after a removal begun between the save's write and its record: %v,"+
					" want %v: an agent restarted without the API server would not resume the pool", got, []types.UID{pp.UID})
			}
		})
	}
}

// TestSaveFailingItsDirectorySync: a save whose sync of the directory
// fails, after the rename, leaves the new spec in place, the one a
// restart reads, though a power loss may yet take it back to the previous
// one: the log says so, not that a restart resumes the previous spec, and
// the store's record says it is not durable, so its retry syncs the
// directory again, and does not write the spec again (a directory whose
// sync always fails would have it written at every retry), and says so,
// with how long the saves failed. A save failing before the rename (here the write of its
// temporary file, a directory in the way) leaves the spec saved last,
// which may be the previous one or this one: an agent restarted, its
// record empty, writes the spec its previous run saved again at its first
// reconcile. The log says the spec saved last, not "not this one".
func TestSaveFailingItsDirectorySync(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	const writeFailed = "Could not save the pool's spec; an agent restart without the API server would resume the" +
		" spec saved last, if any, which may not be this one; will retry"
	obstruct := func(st *store) {
		if err := os.Mkdir(st.path(key)+".tmp", 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name      string
		restarted bool            // the disk holds generation 2, saved by the agent's previous run
		fail      func(st *store) // makes the save of generation 2 fail
		onDisk    int64           // the generation on disk after the failed save
		rewrites  int             // the writes of the spec by its retry
		wantLog   string
	}{
		{name: "the directory's sync", fail: func(st *store) { st.syncDir = failingSync }, onDisk: 2, rewrites: 0,
			wantLog: "Saved the pool's spec, but could not sync its directory: an agent restart without the API server" +
				" resumes this spec, unless the node loses power first, which may bring back its previous saved spec," +
				" if any; will retry"},
		{name: "the write", fail: obstruct, onDisk: 1, rewrites: 1, wantLog: writeFailed},
		{name: "the write, the disk holding the spec", restarted: true, fail: obstruct, onDisk: 2, rewrites: 1,
			wantLog: writeFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := newStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			pp := poolOf(key, "u1")
			pp.Generation = 1
			if tc.restarted {
				pp.Generation = 2
				if err := st.save(pp); err != nil {
					t.Fatal(err)
				}
				if st, err = newStore(dir); err != nil {
					t.Fatal(err)
				}
			}
			book := agenttest.NewLogbook(t)
			a := &Agent{store: st, log: book.Logger()}
			if !tc.restarted {
				a.saveIfChanged(key, pp)
			}
			tc.fail(st)
			pp.Generation = 2
			if a.saveIfChanged(key, pp) {
				t.Fatal("the failed save said saved: it would not be tried again")
			}
			if saved, readErr, parseErr := readSpec(st.path(key)); readErr != nil || parseErr != nil || saved.Generation != tc.onDisk {
				t.Fatalf("on disk after the failed save: %+v (%v, %v), want generation %d", saved, readErr, parseErr, tc.onDisk)
			}
			logged := book.Find("")
			if len(logged) != 1 || !logged[0].IsError || logged[0].Msg != tc.wantLog {
				t.Fatalf("logged %+v, want one error %q", logged, tc.wantLog)
			}
			// Its retry writes it again, or syncs the directory alone,
			// says so, and keeps the record.
			syncs := 0
			st.syncDir = func(dir string) error { syncs++; return syncDir(dir) }
			_ = os.Remove(st.path(key) + ".tmp")
			writes := 0
			st.afterWrite = func() { writes++ }
			for range 2 {
				if !a.saveIfChanged(key, pp) {
					t.Fatal("a save of the mended store said failed")
				}
			}
			if logged := book.Find(""); writes != tc.rewrites || syncs != 1 || len(logged) != 2 || logged[1].IsError ||
				logged[1].Msg != "Saved the pool's spec after failed tries" {
				t.Errorf("its retry and the next reconcile wrote its spec %d times, synced the directory %d times (logging %+v),"+
					" want %d and once, saying so", writes, syncs, logged[1:], tc.rewrites)
			}
			if off := recordOffDisk(st, key); off != "" {
				t.Error(off)
			}
		})
	}
}

// TestSaveInPlaceIsSyncedNotWritten: a save whose sync of the directory
// failed left its spec in place; tried again, it syncs the directory, and
// does not write the spec again, however often that sync fails (a file
// system that refuses it would have the spec written every 5 s for as
// long as the agent runs). Another save's sync that succeeds makes its
// rename durable too: its retry then does nothing.
func TestSaveInPlaceIsSyncedNotWritten(t *testing.T) {
	st, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	web, api := types.NamespacedName{Namespace: "ns", Name: "web"}, types.NamespacedName{Namespace: "ns", Name: "api"}
	syncs, failing := 0, true
	st.syncDir = func(dir string) error {
		syncs++
		if failing {
			return failingSync(dir)
		}
		return syncDir(dir)
	}
	inPlace := func() os.FileInfo {
		t.Helper()
		fi, err := os.Stat(st.path(web))
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	// rewritten: the file is not the one first written (each write is a
	// new file, renamed over the old one). A link to the first keeps its
	// inode from being taken by a later write.
	var first os.FileInfo
	rewritten := func() bool { return !os.SameFile(first, inPlace()) }
	for i := range 3 {
		if err := st.saveIfChanged(poolOf(web, "u1")); !errors.Is(err, errNotDurable) {
			t.Fatalf("saved with the directory's sync failing: %v, want errNotDurable", err)
		}
		if i == 0 {
			if err := os.Link(st.path(web), filepath.Join(st.dir, "first-write")); err != nil {
				t.Fatal(err)
			}
			first = inPlace()
		}
	}
	if rewritten() || syncs != 3 {
		t.Errorf("three saves of one spec, the directory's sync failing: rewritten %v, %d syncs; want false and 3", rewritten(), syncs)
	}
	failing = false
	if err := st.saveIfChanged(poolOf(api, "u2")); err != nil {
		t.Fatal(err)
	}
	if err := st.saveIfChanged(poolOf(web, "u1")); err != nil {
		t.Fatalf("saved after another save's sync: %v", err)
	}
	if rewritten() || syncs != 4 {
		t.Errorf("the retry after another save's sync: rewritten %v, %d syncs in all; want false and 4 (the other's)", rewritten(), syncs)
	}
	for _, key := range []types.NamespacedName{web, api} {
		if off := recordOffDisk(st, key); off != "" {
			t.Error(off)
		}
	}
}

// TestSaveFailuresLoggedWhenWhatTheySayChanges: a pool's failed saves
// are logged once per kind of error, not at every retry, and again
// whenever what the line says a restart resumes changes, whatever the
// kind: a write failing (the spec saved last), then the directory's sync
// (this spec), then the write again for a changed spec: a kind logged
// already, but the last line says a restart resumes a spec it no longer
// does. Each line names the spec's revision and generation, and the save
// after them says it succeeded, with how long they lasted.
func TestSaveFailuresLoggedWhenWhatTheySayChanges(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	st, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	book := agenttest.NewLogbook(t)
	a := &Agent{store: st, log: book.Logger()}
	obstruct := func() {
		if err := os.Mkdir(st.path(key)+".tmp", 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mend := func() {
		if err := os.Remove(st.path(key) + ".tmp"); err != nil {
			t.Fatal(err)
		}
	}
	pp := poolOf(key, "u1")
	pp.Generation, pp.Spec.Revision = 1, "1-aaa"
	failSaves := func(step string, n, wantLines int) {
		t.Helper()
		for range n {
			if a.saveIfChanged(key, pp) {
				t.Fatalf("%s: the failed save said saved", step)
			}
		}
		if got := len(book.Find("")); got != wantLines {
			t.Fatalf("%s: %d lines logged in all (%+v), want %d", step, got, book.Find(""), wantLines)
		}
	}
	wantSpecOn := func(e agenttest.LogEntry) {
		t.Helper()
		rev, _ := e.Value("revision")
		gen, _ := e.Value("generation")
		if rev != pp.Spec.Revision || gen != pp.Generation {
			t.Errorf("%q logged revision %v, generation %v, want %s, %d", e.Msg, rev, gen, pp.Spec.Revision, pp.Generation)
		}
	}

	obstruct()
	failSaves("the write failing twice", 2, 1)
	mend()
	st.syncDir = failingSync
	failSaves("then the directory's sync", 1, 2)
	failSaves("the directory's sync again", 1, 2)
	notDurable := book.Find("")[1]
	if !strings.HasPrefix(notDurable.Msg, "Saved the pool's spec, but could not sync its directory") {
		t.Fatalf("the directory's sync failing logged %q", notDurable.Msg)
	}
	wantSpecOn(notDurable)

	pp.Generation, pp.Spec.Revision = 2, "2-bbb"
	obstruct()
	failSaves("the write failing for a changed spec, after the directory's sync", 1, 3)
	changed := book.Find("")[2]
	if !strings.HasPrefix(changed.Msg, "Could not save the pool's spec") {
		t.Fatalf("the write failing for a changed spec logged %q", changed.Msg)
	}
	wantSpecOn(changed)

	mend()
	st.syncDir = syncDir
	if !a.saveIfChanged(key, pp) {
		t.Fatal("the save of the mended store said failed")
	}
	logged := book.Find("")
	if len(logged) != 4 || logged[3].IsError || logged[3].Msg != "Saved the pool's spec after failed tries" {
		t.Fatalf("after the store was mended, logged %+v, want the save after failed tries", logged[3:])
	}
	if v, _ := logged[3].Value("failedFor"); v == nil {
		t.Error("the save after failures logged without failedFor")
	}
	wantSpecOn(logged[3])
}

// TestSaveTroubleRemindsFromTheLastLine: a pool's failed saves are
// reminded of leaseRemindEvery after the last line logged for the pool,
// whatever made it log: a new kind of failure, a reminder, or a line
// saying another spec than the last did. Counted from the last line of a
// new kind, as leaseTrouble alone counts, the reminder came early: a
// changed spec's line at 4m, a reminder at 5m.
func TestSaveTroubleRemindsFromTheLastLine(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	writeFailed := errors.New("open /var/lib/ferry/pools/ns_web.json.tmp: is a directory")
	notDurable := fmt.Errorf("%w: %w", errNotDurable, errors.New("sync /var/lib/ferry/pools: input/output error"))
	said := func(err error, revision string) string {
		return fmt.Sprintf("%s (revision %q)", saveFailedMsg(err), revision)
	}
	var st saveTrouble
	steps := []struct {
		at       time.Duration
		err      error
		revision string
		wantLog  bool
	}{
		{0, writeFailed, "1-aaa", true},
		{time.Minute, writeFailed, "1-aaa", false},
		{4 * time.Minute, writeFailed, "2-bbb", true}, // another spec: the last line's is not resumed
		{4*time.Minute + time.Second, writeFailed, "2-bbb", false},
		{5 * time.Minute, writeFailed, "2-bbb", false}, // 5m after the first line, 1m after the last
		{4*time.Minute + leaseRemindEvery - time.Second, writeFailed, "2-bbb", false},
		{4*time.Minute + leaseRemindEvery, writeFailed, "2-bbb", true}, // the reminder
		{10 * time.Minute, notDurable, "2-bbb", true},                  // a new kind
		{11 * time.Minute, writeFailed, "3-ccc", true},                 // a kind logged already, another spec
		{10*time.Minute + leaseRemindEvery, writeFailed, "3-ccc", false},
		{11*time.Minute + leaseRemindEvery - time.Second, writeFailed, "3-ccc", false},
		{11*time.Minute + leaseRemindEvery, writeFailed, "3-ccc", true},
	}
	for i, s := range steps {
		since, log := st.failed(t0.Add(s.at), s.err, said(s.err, s.revision))
		if log != s.wantLog {
			t.Errorf("step %d (%v, %s, %v): log = %v, want %v", i, s.at, s.revision, s.err, log, s.wantLog)
		}
		if !since.Equal(t0) {
			t.Errorf("step %d: failing since %v, want %v", i, since, t0)
		}
	}
}

// TestStoreLoadWhileRemoved: load returns the saved specs as they were
// when it began, whatever a removal does meanwhile: without s.mu held, a
// spec removed between its listing of the directory and its read of the
// file would be missing from what it returns. The agent's restore loads
// before anything else touches the store, but load is the store's, and
// holds s.mu as its other readers and writers do. The store's afterList
// hook acts in that span: if it can take s.mu, load holds none, and it
// runs the removal there and then, as a removal that did not wait would;
// else it starts the removal, which waits for load to be done.
func TestStoreLoadWhileRemoved(t *testing.T) {
	st, kept, removed := storeOfTwo(t)
	removeDone := make(chan struct{})
	var removeErr error
	remove := func() {
		defer close(removeDone)
		removeErr = st.removeIf(types.NamespacedName{Namespace: removed.Namespace, Name: removed.Name}, removed.UID)
	}
	st.afterList = func() {
		st.afterList = nil
		nowUnlessHeld(&st.mu, remove) // load holding no lock (as before it took s.mu): in its span
	}
	loaded, errs := st.load()
	<-removeDone
	if removeErr != nil {
		t.Fatalf("removeIf: %v", removeErr)
	}
	var uids []types.UID
	for _, pp := range loaded {
		uids = append(uids, pp.UID)
	}
	if want := []types.UID{kept.UID, removed.UID}; len(errs) != 0 || !slices.Equal(uids, want) {
		t.Errorf("loaded, a removal begun between the listing and the reads: %v, errors %v; want %v and none", uids, errs, want)
	}
	if got := savedUIDs(t, st); !slices.Equal(got, []types.UID{kept.UID}) {
		t.Errorf("saved after the removal: %v, want %v", got, []types.UID{kept.UID})
	}
}

// TestStoreLoadWhileRemovedByHand: a saved spec removed by hand between
// load's listing of the directory and its read of the file is skipped,
// as were it never listed: it was reported unreadable ("no such file or
// directory"), and the agent's log then called a spec unreadable that is
// not there.
func TestStoreLoadWhileRemovedByHand(t *testing.T) {
	st, kept, removed := storeOfTwo(t)
	st.afterList = func() {
		if err := os.Remove(st.path(types.NamespacedName{Namespace: removed.Namespace, Name: removed.Name})); err != nil {
			t.Error(err)
		}
	}
	loaded, errs := st.load()
	var uids []types.UID
	for _, pp := range loaded {
		uids = append(uids, pp.UID)
	}
	if want := []types.UID{kept.UID}; len(errs) != 0 || !slices.Equal(uids, want) {
		t.Errorf("loaded, a spec removed by hand between the listing and the reads: %v, errors %v; want %v and none", uids, errs, want)
	}
}

// failingSync fails every sync of a directory, as a disk may.
func failingSync(string) error { return errors.New("injected sync failure") }

// TestRemoveFailingItsDirectorySync: a removal whose sync of the
// directory fails is errNotDurable, the file gone; its retry (the
// reconcile loop's, which gets the error) finds no file, and syncs the
// directory, making the removal durable: it returned nil without a sync,
// and a power loss could bring back the spec of a deleted pool for an
// agent restarted without the API server to resume. A removal of nothing
// with the directory synced syncs nothing.
func TestRemoveFailingItsDirectorySync(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	for name, remove := range map[string]func(st *store) error{
		"store.remove":   func(st *store) error { return st.remove(key) },
		"store.removeIf": func(st *store) error { return st.removeIf(key, "u1") },
	} {
		t.Run(name, func(t *testing.T) {
			st, err := newStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := st.save(poolOf(key, "u1")); err != nil {
				t.Fatal(err)
			}
			st.syncDir = failingSync
			if err := remove(st); !errors.Is(err, errNotDurable) {
				t.Fatalf("the removal, its directory's sync failing: %v, want errNotDurable", err)
			}
			if _, err := os.Stat(st.path(key)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the saved spec after the removal: %v, want it removed", err)
			}
			syncs := 0
			st.syncDir = func(dir string) error {
				syncs++
				return syncDir(dir)
			}
			if err := remove(st); err != nil || syncs != 1 {
				t.Fatalf("its retry, the file gone: %v, %d syncs of the directory; want none and 1:"+
					" the removal would never be made durable", err, syncs)
			}
			if err := remove(st); err != nil || syncs != 1 {
				t.Errorf("a removal of nothing, the directory synced: %v, %d syncs in all; want none and 1", err, syncs)
			}
		})
	}
	// A drain's removal logs it so, removed, not "Could not remove", and
	// names the pool: stopGone's through its pool's logger, drainAsync's
	// (the reconcile loop's, and a reporter's that read its pool deleted)
	// through the agent's, the pool named by the call.
	for name, drain := range map[string]func(a *Agent, rp *runningPool, pp *ferryv1.ProcessPool){
		"stopGone":                    func(a *Agent, rp *runningPool, pp *ferryv1.ProcessPool) { a.stopGone(rp, pp.UID, false) },
		"drainAsync, the reconcile's": func(a *Agent, _ *runningPool, pp *ferryv1.ProcessPool) { a.drainAsync(key, pp, nil, "") },
		"drainAsync, a reporter's":    func(a *Agent, rp *runningPool, pp *ferryv1.ProcessPool) { a.drainAsync(key, pp, rp, pp.UID) },
	} {
		t.Run(name, func(t *testing.T) {
			st, err := newStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			pp := poolOf(key, "u1")
			if err := st.save(pp); err != nil {
				t.Fatal(err)
			}
			st.syncDir = failingSync
			book := agenttest.NewLogbook(t)
			a := &Agent{store: st, log: book.Logger(), pools: map[types.NamespacedName]*runningPool{},
				unlabelled: map[types.NamespacedName]bool{}, draining: map[types.UID]bool{},
				queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName]())}
			t.Cleanup(a.queue.ShutDown)
			rp := stoppableRunningPool(a, pp)
			rp.log = a.log.WithValues("pool", key) // as startPool's
			a.pools[key] = rp
			drain(a, rp, pp)
			a.wg.Wait()
			const want = "Removed the saved spec of a deleted pool, but could not sync its directory: a power loss may" +
				" bring it back, for an agent restarted without the API server to resume; the agent syncs the directory" +
				" at its next write or removal of a saved spec"
			var errs []string
			for _, e := range book.Find("") {
				if !e.IsError {
					continue
				}
				errs = append(errs, e.Msg)
				if v, n := e.Value("pool"); n != 1 || v != key {
					t.Errorf("%q names pool %v (%d times), want %v once", e.Msg, v, n, key)
				}
			}
			if !slices.Equal(errs, []string{want}) {
				t.Errorf("logged errors %q, want %q", errs, want)
			}
		})
	}
}

// TestStoreBeginsUnsynced: a store does not know whether the agent before
// it synced its directory after its last removal (it may have died with
// that sync failing), so its first removal that finds no file syncs the
// directory, and only that one.
func TestStoreBeginsUnsynced(t *testing.T) {
	st, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	syncs := 0
	st.syncDir = func(dir string) error {
		syncs++
		return syncDir(dir)
	}
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	if err := st.remove(key); err != nil || syncs != 1 {
		t.Fatalf("a new store's removal of nothing: %v, %d syncs of the directory; want none and 1:"+
			" a removal the agent before it could not sync would never be made durable", err, syncs)
	}
	if err := st.removeIf(key, "u1"); err != nil || syncs != 1 {
		t.Errorf("its next removal of nothing: %v, %d syncs in all; want none and 1", err, syncs)
	}
}

// storeOfTwo is a new store holding the saved specs of two pools, kept
// and removed, as the load tests name them.
func storeOfTwo(t *testing.T) (st *store, kept, removed *ferryv1.ProcessPool) {
	t.Helper()
	st, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	kept, removed = poolOf(types.NamespacedName{Namespace: "ns", Name: "kept"}, "u1"),
		poolOf(types.NamespacedName{Namespace: "ns", Name: "removed"}, "u2")
	for _, pp := range []*ferryv1.ProcessPool{kept, removed} {
		if err := st.save(pp); err != nil {
			t.Fatal(err)
		}
	}
	return st, kept, removed
}

// nowUnlessHeld runs f at once where it can take mu, which the code
// under test should hold (a test hook's span, the bug were it not held),
// so that f lands in that span every run; else in a goroutine, which mu
// holds back until the code under test lets it go.
func nowUnlessHeld(mu *sync.Mutex, f func()) {
	if mu.TryLock() {
		mu.Unlock()
		f()
		return
	}
	go f()
}
