package cluster

import (
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
