package cluster

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// store keeps the last spec of every pool on disk, so an agent restarted
// while the API server is down resumes what it ran.
type store struct {
	dir string
	// mu serialises the writes of the files and the record of them
	// (saved): a save, and a removal that reads the file to know whose it
	// is (removeIf), whose read and remove must see no save between them:
	// a new pool's spec saved there would be removed as the old pool's
	// (TestStoreSaveWhileRemoveIf); and saveIfChanged, whose check of the
	// record, write and record must see no removal between them: the
	// record would say a spec is on disk that the removal took, and the
	// next reconcile would not write it again (TestSaveIfChangedWhileRemoved).
	//
	// load holds it too, to read the files as they were when it began
	// (TestStoreLoadWhileRemoved).
	//
	// It is held across the disk's writes and syncs, so only the store's
	// callers wait for it: the reconcile loop and a reporter that found
	// its pool gone, each about to write the disk itself. None takes it
	// with the agent's a.mu held, which the reporters and the reconcile
	// loop take for every pool: a slow disk must not hold them all.
	mu sync.Mutex
	// saved is, for each name whose file this store last wrote, the pool
	// in it: saveIfChanged skips a write by it. It changes with the file,
	// s.mu held: set by a write, gone with a removal. A file it has no
	// record of (saved by the agent's previous run, or a write that
	// failed) is written again at the pool's next reconcile, which a
	// failed save queues itself (Agent.saveIfChanged); one in place whose
	// directory's sync failed (savedAs.unsynced) is synced again, not
	// written.
	saved map[types.NamespacedName]savedAs
	// afterRead is nil in production. A test sets it to act in removeIf
	// between its read of the file and its removal, s.mu held: where a
	// save must wait (TestStoreSaveWhileRemoveIf).
	afterRead func()
	// afterWrite is nil in production. A test sets it to act in a save
	// between the write of the file and the record of it, s.mu held:
	// where a removal must wait (TestSaveIfChangedWhileRemoved).
	afterWrite func()
	// afterList is nil in production. A test sets it to act in load
	// between its listing of the directory and its reads of the files:
	// where a removal must wait (TestStoreLoadWhileRemoved), and one by
	// hand is skipped (TestStoreLoadWhileRemovedByHand).
	afterList func()
	// syncDir syncs the store's directory after a rename or a removal:
	// the function syncDir in production. A test sets it to fail, or to
	// count the syncs (TestSaveFailingItsDirectorySync,
	// TestRemoveFailingItsDirectorySync).
	syncDir func(dir string) error
	// dirUnsynced is whether the store's last sync of its directory
	// failed, s.mu held (syncOwnDir). A removal that finds no file syncs
	// the directory then: the removal whose sync failed took the file, so
	// its retry finds none, and without a sync of its own would never make
	// that removal durable.
	dirUnsynced bool
}

// savedAs is the pool whose spec the store last saved under a name: its
// UID and generation, and whether its rename is durable yet.
type savedAs struct {
	uid        types.UID
	generation int64
	// unsynced: the file is in place, but the sync of the directory
	// after its rename failed (errNotDurable), and none has succeeded
	// since (syncOwnDir): the save's retry syncs the directory alone. A
	// directory whose sync always fails (some file systems refuse it)
	// would otherwise have every such pool's spec written again at every
	// retry, for as long as the agent runs.
	unsynced bool
}

// holds: the record is of pp's spec, its UID and generation.
func (sa savedAs) holds(pp *ferryv1.ProcessPool) bool {
	return sa.uid == pp.UID && sa.generation == pp.Generation
}

func newStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// dirUnsynced begins true: the agent before this one may have died
	// after a removal whose sync failed (TestStoreBeginsUnsynced).
	return &store{dir: dir, saved: map[types.NamespacedName]savedAs{}, syncDir: syncDir, dirUnsynced: true}, nil
}

// maxFileName bounds a saved pool's file name, its ".tmp" included: the
// 255 bytes most file systems allow (a namespace and a name may take 63
// and 253). Names that fit keep the file name they always had.
const maxFileName = 255

// path is where key's spec is saved. A name too long for a file name is
// cut, and a hash of the whole key keeps it apart from others cut the
// same: the name inside the file is what load goes by.
func (s *store) path(key types.NamespacedName) string {
	base := key.Namespace + "_" + key.Name
	if len(base)+len(".json.tmp") > maxFileName {
		sum := sha256.Sum256([]byte(key.String()))
		base = base[:maxFileName-len(".json.tmp")-17] + "-" + hex.EncodeToString(sum[:8])
	}
	return filepath.Join(s.dir, base+".json")
}

// saveIfChanged saves pp unless its name's file holds its spec as this
// store last wrote it: the same UID and generation. Status reports
// update the object too, and need no write; a new pool of the name may
// have the old one's generation, and needs one. A spec in place whose
// directory's sync failed (savedAs.unsynced) needs that sync alone, not
// another write. The check, the write and the record are one hold of
// s.mu, so a removal comes before all three or after.
func (s *store) saveIfChanged(pp *ferryv1.ProcessPool) error {
	key := types.NamespacedName{Namespace: pp.Namespace, Name: pp.Name}
	s.mu.Lock()
	defer s.mu.Unlock()
	if was, ok := s.saved[key]; ok && was.holds(pp) {
		if was.unsynced {
			return s.syncDurably() // which marks it synced, if it is
		}
		return nil
	}
	return s.saveLocked(pp)
}

// saveLocked writes pp, s.mu held, atomically (write, then rename), and
// durably: the file is synced before the rename and the directory after
// it, so that a node that loses power finds the old spec or the new one,
// never an empty file (ext4 and xfs may commit a rename before the data
// it points to). The record goes before the write and comes back once
// the file is in place: a failed write may have left either spec, and the
// save's retry (reconcile) writes it again. A failed sync of the
// directory, after the rename, is errNotDurable: the new spec is in
// place, the one a restart reads, but a power loss may yet bring back the
// previous one; its record says so (unsynced), and the retry syncs the
// directory again, without writing the spec again.
func (s *store) saveLocked(pp *ferryv1.ProcessPool) error {
	saved := ferryv1.ProcessPool{TypeMeta: pp.TypeMeta, Spec: pp.Spec}
	saved.Name, saved.Namespace, saved.UID, saved.Generation = pp.Name, pp.Namespace, pp.UID, pp.Generation
	saved.Labels = pp.Labels
	// Encoded in the hold: microseconds beside the write, the rename and
	// their two syncs, and the one hold is what orders a removal against
	// this save's write and record.
	data, err := json.MarshalIndent(&saved, "", "  ")
	if err != nil {
		return err
	}
	key := types.NamespacedName{Namespace: pp.Namespace, Name: pp.Name}
	delete(s.saved, key)
	path := s.path(key)
	tmp := path + ".tmp"
	if err := writeSynced(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	syncErr := s.syncDurably()
	if s.afterWrite != nil {
		s.afterWrite()
	}
	s.saved[key] = savedAs{uid: pp.UID, generation: pp.Generation, unsynced: syncErr != nil}
	return syncErr
}

// errNotDurable is a save's or a removal's failure to sync the directory
// after its rename or removal: done, and what a restart reads, but a
// power loss may undo it.
var errNotDurable = errors.New("not durable")

// writeSynced writes data to a new file at path and syncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncOwnDir syncs the store's directory (s.syncDir), s.mu held, and
// notes whether it failed (dirUnsynced). One that succeeds makes every
// rename before it durable: the saves whose own sync failed with them.
func (s *store) syncOwnDir() error {
	err := s.syncDir(s.dir)
	s.dirUnsynced = err != nil
	if err == nil {
		for key, was := range s.saved {
			if was.unsynced {
				was.unsynced = false
				s.saved[key] = was
			}
		}
	}
	return err
}

// syncDir syncs a directory, making the renames in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// remove deletes key's saved spec, whoever's it is, durably: a pool
// deleted before a power loss must not come back from its file. The
// reconcile loop's removals (the cache shows the pool deleted, or no
// pool of the name) call it: the loop alone saves specs, so none is
// saved between its read and its removal, and a spec of another UID is
// an older pool's of the name, gone as well (one resumed from disk,
// deleted while its agent was away, whose name a new pool has taken
// since).
func (s *store) remove(key types.NamespacedName) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeLocked(key)
}

// removeIf deletes key's saved spec, as remove does, only when it is the
// pool of UID uid's, or saved without a UID, which any caller removes (no
// agent version saves one without a UID; a file placed by hand); uid
// empty is a pool resumed from such a spec. A spec of another UID is a
// new pool's of the same name, saved by the reconcile loop over the
// caller's, after the caller read its pool gone: it stays, for an agent
// restarted without the API server to resume the new pool. A file that
// does not parse is nobody's, and goes.
func (s *store) removeIf(key types.NamespacedName, uid types.UID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	saved, readErr, parseErr := readSpec(s.path(key))
	if s.afterRead != nil {
		s.afterRead()
	}
	switch {
	case errors.Is(readErr, fs.ErrNotExist):
		delete(s.saved, key) // none on disk: none to skip a save by
		return s.goneAlready()
	case readErr != nil:
		return readErr
	case parseErr == nil && saved.UID != "" && saved.UID != uid:
		return nil // kept: a new pool's, as is its record, if any
	}
	return s.removeLocked(key)
}

// removeLocked is remove, s.mu held. The record goes whatever the
// removal's outcome: a spec left by a failed one is written again, not
// taken for saved, should the pool come back. A failed sync of the
// directory, after the removal, is errNotDurable: the spec is gone, but a
// power loss may bring it back; the retry finds no file, and syncs
// (goneAlready).
func (s *store) removeLocked(key types.NamespacedName) error {
	delete(s.saved, key)
	err := os.Remove(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return s.goneAlready()
	}
	if err != nil {
		return err
	}
	return s.syncDurably()
}

// goneAlready ends a removal that finds no file, s.mu held: removed by
// hand, or by an earlier removal whose sync of the directory failed
// (dirUnsynced), which this one, its retry, makes durable.
func (s *store) goneAlready() error {
	if !s.dirUnsynced {
		return nil
	}
	return s.syncDurably()
}

// syncDurably syncs the directory after a rename or a removal, s.mu
// held; its failure is errNotDurable: the change is in place, not durable.
func (s *store) syncDurably() error {
	if err := s.syncOwnDir(); err != nil {
		return fmt.Errorf("%w: %w", errNotDurable, err)
	}
	return nil
}

// load returns every saved pool; unreadable files are reported and
// skipped, as are files gone since the listing (removed by hand:
// TestStoreLoadWhileRemovedByHand). It holds s.mu, so it finds the files
// as they were when it began: a removal between its listing and its reads
// would take a spec from what it returns (TestStoreLoadWhileRemoved). The
// agent's restore loads before any reconcile or reporter runs, so it
// waits for none.
func (s *store) load() ([]*ferryv1.ProcessPool, []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, []error{err}
	}
	if s.afterList != nil {
		s.afterList()
	}
	var out []*ferryv1.ProcessPool
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		pp, readErr, parseErr := readSpec(filepath.Join(s.dir, e.Name()))
		if errors.Is(readErr, fs.ErrNotExist) {
			continue // removed by hand since the listing: not saved, not unreadable
		}
		if readErr != nil || parseErr != nil {
			errs = append(errs, cmp.Or(readErr, parseErr))
			continue
		}
		out = append(out, pp)
	}
	return out, errs
}

// readSpec is the pool saved in the file at path: readErr when the file
// cannot be read (fs.ErrNotExist when there is none), parseErr, which
// names the file, when it does not parse.
func readSpec(path string) (pp *ferryv1.ProcessPool, readErr, parseErr error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err, nil
	}
	pp = &ferryv1.ProcessPool{}
	if err := json.Unmarshal(data, pp); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return pp, nil, nil
}
