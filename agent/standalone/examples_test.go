package standalone

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCommandHelloExample runs examples/command-hello as its README says
// (its own appgroup.yaml, root "."), on another port, and checks what the
// README promises of its answers, over one keep-alive connection as a
// proxy's: an example users copy has to work as written.
func TestCommandHelloExample(t *testing.T) {
	// Not t.TempDir: the workers run as nobody, who may not enter its parent.
	dir, err := os.MkdirTemp("", "fexample")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	root := filepath.Join(dir, "command-hello")
	if out, err := exec.Command("cp", "-r", "../../examples/command-hello", root).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := &site{dir: dir, file: filepath.Join(root, "appgroup.yaml"), root: root, port: 8083}
	s.movePort(t)
	renameApp(t, s.file, "command-hello", "hello") // the name run waits for
	r := run(t, s)
	defer r.stop()

	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	for i := range 5 {
		res, err := client.Get(s.url() + "/")
		if err != nil {
			t.Fatalf("GET / #%d: %v", i+1, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		pid := strings.TrimSpace(string(body))
		if _, err := strconv.Atoi(pid); res.StatusCode != 200 || err != nil || res.Header.Get("X-Pid") != pid || !strings.HasPrefix(res.Header.Get("X-Revision"), "1-") {
			t.Fatalf("GET / #%d: %d %q, X-Pid %q, X-Revision %q; want 200, the pid in both, revision 1-…",
				i+1, res.StatusCode, body, res.Header.Get("X-Pid"), res.Header.Get("X-Revision"))
		}
	}
	for path, want := range map[string]int{"/healthz": 200, "/nope": 404, "/slow?ms=10": 200} {
		res, err := client.Get(s.url() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, res.StatusCode, want)
		}
	}
	res, err := client.Head(s.url() + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("X-Pid") == "" {
		t.Errorf("HEAD /: %d, X-Pid %q; want 200 with a pid", res.StatusCode, res.Header.Get("X-Pid"))
	}
}

func renameApp(t *testing.T, file, from, to string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(data), "name: "+from+"\n", "name: "+to+"\n", 1)
	if doc == string(data) {
		t.Fatalf("%s has no name: %s", file, from)
	}
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}
