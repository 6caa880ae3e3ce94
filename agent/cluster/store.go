package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// store keeps the last spec of every pool on disk, so an agent restarted
// while the API server is down resumes what it ran.
type store struct {
	dir string
}

func newStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &store{dir: dir}, nil
}

func (s *store) path(key types.NamespacedName) string {
	return filepath.Join(s.dir, key.Namespace+"_"+key.Name+".json")
}

// save writes pp atomically (write, then rename).
func (s *store) save(pp *ferryv1.ProcessPool) error {
	saved := ferryv1.ProcessPool{TypeMeta: pp.TypeMeta, Spec: pp.Spec}
	saved.Name, saved.Namespace, saved.UID, saved.Generation = pp.Name, pp.Namespace, pp.UID, pp.Generation
	saved.Labels = pp.Labels
	data, err := json.MarshalIndent(&saved, "", "  ")
	if err != nil {
		return err
	}
	path := s.path(types.NamespacedName{Namespace: pp.Namespace, Name: pp.Name})
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (s *store) remove(key types.NamespacedName) error {
	err := os.Remove(s.path(key))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

// load returns every saved pool; unreadable files are reported and skipped.
func (s *store) load() ([]*ferryv1.ProcessPool, []error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, []error{err}
	}
	var out []*ferryv1.ProcessPool
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pp := &ferryv1.ProcessPool{}
		if err := json.Unmarshal(data, pp); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.Name(), err))
			continue
		}
		out = append(out, pp)
	}
	return out, errs
}
