// Package crd holds Ferry's generated CustomResourceDefinitions, embedded in
// the binary, so that code which needs a CRD's schema (the standalone agent
// validating an AppGroup file, a test installing the CRDs) always uses the
// generated one in bases/ and never a hand-kept copy.
package crd

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

//go:embed bases/*.yaml
var bases embed.FS

// Bases returns the generated CRD manifests as a file system: one YAML file
// per CRD, under bases/.
func Bases() fs.FS { return bases }

// parse decodes bases/ once; CRDs and ByKind hand out deep copies.
var parse = sync.OnceValues(func() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := fs.Glob(bases, "bases/*.yaml")
	if err != nil {
		return nil, err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, name := range files {
		data, err := bases.ReadFile(name)
		if err != nil {
			return nil, err
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.UnmarshalStrict(doc, crd); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if crd.Kind != "CustomResourceDefinition" {
				return nil, fmt.Errorf("%s: kind is %q, want CustomResourceDefinition", name, crd.Kind)
			}
			crds = append(crds, crd)
		}
	}
	sort.Slice(crds, func(i, j int) bool { return crds[i].Name < crds[j].Name })
	return crds, nil
})

// CRDs returns every generated CRD, sorted by name. The caller owns the
// returned objects.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	crds, err := parse()
	if err != nil {
		return nil, err
	}
	out := make([]*apiextensionsv1.CustomResourceDefinition, len(crds))
	for i := range crds {
		out[i] = crds[i].DeepCopy()
	}
	return out, nil
}

// ByKind returns the generated CRD whose spec.names.kind is kind, such as
// "AppGroup". The caller owns the returned object.
func ByKind(kind string) (*apiextensionsv1.CustomResourceDefinition, error) {
	crds, err := parse()
	if err != nil {
		return nil, err
	}
	for _, crd := range crds {
		if crd.Spec.Names.Kind == kind {
			return crd.DeepCopy(), nil
		}
	}
	return nil, fmt.Errorf("no generated CRD has kind %q", kind)
}
