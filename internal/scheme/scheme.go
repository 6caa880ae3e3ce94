// Package scheme builds the runtime.Scheme Ferry's binaries and tests
// share: client-go's built-in kinds plus Ferry's.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// New returns a scheme with client-go's kinds and Ferry's.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := ferryv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
