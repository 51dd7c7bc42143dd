package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// platformURL is where examples/teams' products find the platform team's
// repository; the test points it at the one publish.sh makes.
const platformURL = "https://git.example.com/platform/modules.git"

// TestTeamsExample runs examples/teams as the three teams would: the
// platform team publishes its releases with publish.sh (Debian's git), and
// each product validates, plans and runs with the imgbuild.lock it
// committed, one on platform 1.0.0, the other on 2.0.0.
func TestTeamsExample(t *testing.T) {
	testkit.RequireProgram(t, "git", "git")
	modCache(t)
	dir := t.TempDir()
	copyDir(t, filepath.Join(repoRoot(t), "examples", "teams"), dir)
	bare := filepath.Join(t.TempDir(), "platform.git")
	publish := exec.Command("sh", filepath.Join(dir, "publish.sh"), bare)
	if out, err := publish.CombinedOutput(); err != nil {
		t.Fatalf("publish.sh: %v\n%s", err, out)
	}
	// The products name the platform's server; git's own insteadOf sends
	// them to the repository just published, as a mirror would.
	config := filepath.Join(t.TempDir(), "gitconfig")
	testkit.WriteFile(t, config, fmt.Sprintf("[url %q]\n\tinsteadOf = %s\n", bare, platformURL))
	t.Setenv("GIT_CONFIG_GLOBAL", config)

	products := []struct {
		name, build, release, motd string
		sysctl                     []string
	}{
		{"shop", "shop-web", "1.0.0\n", "shop image, platform 1.0.0. Questions: #shop\n", []string{"kernel.kptr_restrict = 2\n"}},
		{"search", "search-api", "2.0.0 strict\n", "search image, platform 2.0.0. Questions: #search\n", []string{"kernel.kptr_restrict = 2\n", "kernel.yama.ptrace_scope = 2\n"}},
	}
	for _, p := range products {
		t.Run(p.name, func(t *testing.T) {
			ws := filepath.Join(dir, p.name)
			v := "v" + strings.Fields(p.release)[0]
			commit := strings.TrimSpace(gitOut(t, bare, "rev-parse", v+"^{commit}"))
			// The committed lock names the commits publish.sh makes.
			out, _ := mod(t, ws, 0, "mod", "download", "--locked")
			wantIn(t, "mod download", out, "imgbuild.lock is up to date: 1 module locked")
			out, _ = mod(t, ws, 0, "mod", "graph")
			wantIn(t, "mod graph", out, p.name+" (workspace)\n└── platform  "+v+" (commit "+commit[:12]+")  sha256:")
			out, _ = mod(t, ws, 0, "validate", "--locked", ".")
			wantIn(t, "validate", out, "images.star is valid: 1 build in 1 wave")
			out, _ = mod(t, ws, 0, "plan", "--locked", "--no-color", ".")
			wantIn(t, "plan", out, "+ "+p.build+" (local)", `file(content = `+fmt.Sprintf("%q", p.release)+`, destination = "/etc/platform-release")`)
			t.Setenv("CI", "true")
			mod(t, ws, 0, "run", "--no-color", ".")
			t.Setenv("CI", "")
			tree := filepath.Join(ws, "output", p.build, "etc")
			wantFile(t, filepath.Join(tree, "platform-release"), p.release)
			wantFile(t, filepath.Join(tree, "motd"), p.motd)
			sysctl, _ := os.ReadFile(filepath.Join(tree, "sysctl.d", "90-platform.conf"))
			wantIn(t, "sysctl.d/90-platform.conf", string(sysctl), p.sysctl...)
			out, _ = mod(t, ws, 0, "mod", "verify")
			wantIn(t, "mod verify", out, "platform: ok ("+v+" (commit "+commit[:12]+")")
		})
	}
	// The shop team cannot take 2.0.0's strict level without moving to it.
	shop := filepath.Join(dir, "shop")
	images := filepath.Join(shop, "images.star")
	src, _ := os.ReadFile(images)
	testkit.WriteFile(t, images, strings.Replace(string(src), "hardening()", "hardening(level = \"strict\")", 1))
	_, errOut := mod(t, shop, 2, "validate", ".")
	wantIn(t, "shop on 1.0.0 with level", errOut, "error: @platform//hardening.star:15:1: function hardening accepts no arguments (1 given)", "images.star:9:29: in <toplevel>")
}

// gitOut runs git in dir and returns its output.
func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// wantFile fails unless the file holds want.
func wantFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s = %q, want %q", path, got, want)
	}
}
