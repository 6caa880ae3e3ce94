package v1alpha1_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// env is the real control plane every test in this package talks to: the
// schema, defaults and CEL rules under test are the API server's own.
var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}
