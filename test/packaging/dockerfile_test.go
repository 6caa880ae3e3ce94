package packaging_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// There is no container engine here. What can be proven without one is:
// the Dockerfile's stages are the ones the chart and docs expect (a
// distroless non-root manager, a Python agent run as root), and its build
// stage, run for real on the build context .dockerignore leaves, produces
// the same binaries as `make build` with the Makefile's GO_BUILD.

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
}

// stage is one FROM and what follows it.
type stage struct {
	name, from string
	ins        []instruction
}

func parseDockerfile(t *testing.T) (global []instruction, stages []*stage) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		in := instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := &stage{}
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					st.name = f[i+1]
					i++
				default:
					st.from = f[i]
				}
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			global = append(global, in)
		} else {
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
	}
	return global, stages
}

func stageNamed(t *testing.T, stages []*stage, name string) *stage {
	t.Helper()
	for _, s := range stages {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("the Dockerfile has no stage %q", name)
	return nil
}

func (s *stage) last(cmd string) string {
	out := ""
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = in.args
		}
	}
	return out
}

func TestDockerfileImages(t *testing.T) {
	global, stages := parseDockerfile(t)

	// The Go toolchain image is go.mod's go version.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	if want := "GO_VERSION=" + string(m[1]); !slices.Contains(global, instruction{"ARG", want}) {
		t.Errorf("the Dockerfile's global ARGs %v lack %s (go.mod's go directive)", global, want)
	}
	if build := stageNamed(t, stages, "build"); build.from != "golang:${GO_VERSION}" {
		t.Errorf("the build stage is FROM %s", build.from)
	}

	manager := stageNamed(t, stages, "manager")
	if !strings.HasPrefix(manager.from, "gcr.io/distroless/static") || !strings.HasSuffix(manager.from, ":nonroot") {
		t.Errorf("the manager stage is FROM %s, want a distroless static nonroot base", manager.from)
	}
	if u := manager.last("USER"); u != "65532:65532" {
		t.Errorf("the manager runs as %q, want 65532:65532 (the chart's runAsUser)", u)
	}
	if e := manager.last("ENTRYPOINT"); e != `["/ferry-manager"]` {
		t.Errorf("the manager's ENTRYPOINT is %s", e)
	}
	if c := manager.last("COPY"); c != "--from=build /src/out/ferry-manager /ferry-manager" {
		t.Errorf("the manager stage copies %q", c)
	}

	agent := stageNamed(t, stages, "agent")
	if !regexp.MustCompile(`^(python:3\.\d+-slim-bookworm|debian:bookworm-slim)$`).MatchString(agent.from) {
		t.Errorf("the agent stage is FROM %s, want a slim Debian Python base", agent.from)
	}
	if u := agent.last("USER"); u != "0:0" {
		t.Errorf("the agent runs as %q, want 0:0: it runs workers as other users", u)
	}
	if e := agent.last("ENTRYPOINT"); e != `["/usr/local/bin/ferry-agent"]` {
		t.Errorf("the agent's ENTRYPOINT is %s", e)
	}
	if c := agent.last("COPY"); c != "--from=build /src/out/ferry-agent /usr/local/bin/ferry-agent" {
		t.Errorf("the agent stage copies %q", c)
	}

	// The chart's manager pod runs as the image's user.
	dep := find(t, render(t, renderOpts{}), "Deployment", "manager")
	if uid := nested[map[string]any](t, dep.Object, "spec", "template", "spec", "securityContext")["runAsUser"]; uid != float64(65532) {
		t.Errorf("the chart runs the manager as %v, the image as 65532", uid)
	}
}

// TestDockerfileBuildsWhatMakeBuilds runs the Dockerfile's build stage on
// the build context (the repository less .dockerignore) and `make build`,
// and compares the binaries: same Go build settings (CGO off, -trimpath;
// Go does not record -ldflags with -trimpath, so the same bytes prove those),
// statically linked, version stamped.
func TestDockerfileBuildsWhatMakeBuilds(t *testing.T) {
	_, stages := parseDockerfile(t)
	build := stageNamed(t, stages, "build")
	const version = binVersion

	// The Dockerfile's ldflags are the Makefile's GO_LDFLAGS, with
	// $VERSION for $(VERSION).
	ldflags := makeVar(t, "GO_LDFLAGS", "@VERSION@")
	var buildRun string
	for _, in := range build.ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			buildRun = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "go build -trimpath", `-ldflags "` + strings.ReplaceAll(ldflags, "@VERSION@", "$VERSION") + `"`} {
		if !strings.Contains(buildRun, want) {
			t.Errorf("the Dockerfile's go build lacks %s (the Makefile's GO_BUILD): %s", want, buildRun)
		}
	}
	if goBuild := makeVar(t, "GO_BUILD", "x"); !strings.Contains(goBuild, "CGO_ENABLED=0") || !strings.Contains(goBuild, "-trimpath") {
		t.Fatalf("the Makefile's GO_BUILD changed (%s): update the Dockerfile and this test", goBuild)
	}

	// Run the build stage: WORKDIR /src is a copy of the build context.
	work := t.TempDir()
	src := filepath.Join(work, "src")
	envs := map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "VERSION": version}
	dir := ""
	for _, in := range build.ins {
		switch in.cmd {
		case "ARG":
			name, def, _ := strings.Cut(in.args, "=")
			if _, ok := envs[name]; !ok {
				envs[name] = def
			}
		case "WORKDIR":
			if in.args != "/src" {
				t.Fatalf("the build stage's WORKDIR is %s; this test maps /src", in.args)
			}
			dir = src
		case "COPY":
			f := strings.Fields(in.args)
			if dir == "" || len(f) < 2 || f[len(f)-1] != "." && f[len(f)-1] != "./" {
				t.Fatalf("unexpected COPY %s", in.args)
			}
			for _, p := range f[:len(f)-1] {
				copyContext(t, p, dir)
			}
		case "RUN":
			script := regexp.MustCompile(`--mount=\S+\s*`).ReplaceAllString(in.args, "")
			cmd := exec.Command("sh", "-ec", script)
			cmd.Dir = dir
			cmd.Env = os.Environ()
			for k, v := range envs {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("RUN %s: %v\n%s", script, err, out)
			}
		case "ENV", "SHELL", "USER":
			t.Fatalf("the build stage uses %s; teach this test about it", in.cmd)
		}
	}

	// `make build` with the same version, VCS stamping off (the Docker
	// context has no .git to stamp from).
	makeBin := ferryBinaries(t)

	for _, name := range []string{"ferry-manager", "ferry-agent"} {
		docker, made := filepath.Join(src, "out", name), filepath.Join(makeBin, name)
		if a, b := buildSettings(t, docker), buildSettings(t, made); !slices.Equal(a, b) {
			t.Errorf("%s: the Dockerfile builds with\n%q\nmake build with\n%q", name, a, b)
		}
		if a, b := sha256File(t, docker), sha256File(t, made); a != b {
			t.Errorf("%s: the Dockerfile's binary (%s) differs from make build's (%s)", name, a, b)
		}
		checkStatic(t, docker)
	}
	out, err := exec.Command(filepath.Join(src, "out", "ferry-agent"), "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ferry-agent "+version {
		t.Errorf("ferry-agent version: %q (%v), want the stamped %s", out, err, version)
	}
}

// makeVar prints a Makefile variable, with VERSION set.
func makeVar(t *testing.T, name, version string) string {
	t.Helper()
	cmd := exec.Command("make", "-C", root, "--no-print-directory", "-s",
		"--eval", "print-var-%: ; @echo '$($*)'", "print-var-"+name, "VERSION="+version)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make print-var-%s: %v\n%s", name, err, out)
	}
	return strings.TrimSpace(string(out))
}

// buildSettings returns a binary's Go build settings (`go version -m`).
func buildSettings(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m %s: %v\n%s", bin, err, out)
	}
	var settings []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "build" {
			settings = append(settings, strings.Join(f[1:], " "))
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath=true"} {
		if !slices.Contains(settings, want) {
			t.Errorf("%s was built without %s: %q", filepath.Base(bin), want, settings)
		}
	}
	return settings
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkStatic fails unless bin is a statically linked ELF: no interpreter,
// no shared libraries, as a distroless static base needs.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a dynamic loader", filepath.Base(bin))
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s links %v", filepath.Base(bin), libs)
	}
}

// copyContext copies the build context's path p (relative, or "." for all)
// into dst, leaving out what .dockerignore excludes.
func copyContext(t *testing.T, p, dst string) {
	t.Helper()
	patterns := dockerignore(t)
	base := filepath.Join(root, filepath.Clean(p))
	err := filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if rel != "." && ignored(patterns, rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if p != "." {
			target = filepath.Join(dst, filepath.Base(rel))
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dockerignore reads .dockerignore. This test supports what it uses:
// plain paths and globs, and a leading **/ (any directory); not "!"
// exceptions.
func dockerignore(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") || strings.Contains(strings.TrimPrefix(line, "**/"), "**") {
			t.Fatalf(".dockerignore pattern %q is beyond this test's matcher; extend copyContext", line)
		}
		out = append(out, strings.TrimPrefix(line, "/"))
	}
	return out
}

// ignored reports whether rel (slash-separated, relative to the context)
// matches a pattern, as Docker matches: the whole path against the
// pattern, "**/" matching any number of leading directories.
func ignored(patterns []string, rel string) bool {
	rel = filepath.ToSlash(rel)
	parts := strings.Split(rel, "/")
	for _, p := range patterns {
		if tail, ok := strings.CutPrefix(p, "**/"); ok {
			for i := range parts {
				if ok, _ := filepath.Match(tail, strings.Join(parts[i:], "/")); ok {
					return true
				}
			}
			continue
		}
		if ok, _ := filepath.Match(p, rel); ok {
			return true
		}
	}
	return false
}
