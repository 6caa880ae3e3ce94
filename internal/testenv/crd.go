package testenv

import (
	"context"
	"fmt"
)

// SetNodeNameSelectable declares spec.nodeName a selectable field of the
// ProcessPool CRD, as config/crd/bases does (on), or takes it out, as in a
// CRD older than the agents, which list their node's pools by it. It does
// not wait for the API server to list accordingly: the caller waits for
// what it needs to see.
func (e *Env) SetNodeNameSelectable(ctx context.Context, on bool) error {
	patch := `[{"op":"remove","path":"/spec/versions/0/selectableFields"}]`
	if on {
		patch = `[{"op":"add","path":"/spec/versions/0/selectableFields","value":[{"jsonPath":".spec.nodeName"}]}]`
	}
	if _, err := e.Kubectl(ctx, "patch", "crd", "processpools.ferry.dev", "--type=json", "-p", patch); err != nil {
		return fmt.Errorf("patching the ProcessPool CRD: %w", err)
	}
	return nil
}
