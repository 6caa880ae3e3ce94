package loadgen

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"time"
)

// ShellTrigger returns a Trigger that runs command with "sh -c", its standard
// output and error going to out (discarded if nil). The trigger fails if the
// command exits non-zero. When the trigger's context is cancelled, the
// command's whole process group is killed.
func ShellTrigger(command string, out io.Writer) func(context.Context) error {
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "sh", "-c", command)
		cmd.Stdout = out
		cmd.Stderr = out
		cmd.WaitDelay = time.Second
		setProcessGroup(cmd)
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("trigger %q: %w", command, err)
		}
		return nil
	}
}
