package main

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestReleaseBinaryIsStaticStrippedAndKnowsItsVersion checks the binary
// TestMain built with make release: statically linked (no ELF interpreter),
// stripped (no symbol table), built with -trimpath and CGO_ENABLED=0, its
// SHA256SUMS right, and its version and commit from git via -ldflags.
func TestReleaseBinaryIsStaticStrippedAndKnowsItsVersion(t *testing.T) {
	testkit.Require(t, runtime.GOOS == "linux", "checks an ELF binary: runs on Linux")
	f, err := elf.Open(binary)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the release binary is dynamically linked (it has an ELF interpreter)")
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("the release binary is not stripped (it has .symtab)")
	}
	info, err := exec.Command("go", "version", "-m", binary).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-trimpath=true", "CGO_ENABLED=0"} {
		if !strings.Contains(string(info), want) {
			t.Errorf("build info lacks %s:\n%s", want, info)
		}
	}
	sums := exec.Command("sha256sum", "-c", "SHA256SUMS")
	sums.Dir = filepath.Dir(binary)
	if out, err := sums.CombinedOutput(); err != nil || !strings.Contains(string(out), filepath.Base(binary)+": OK") {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}
	out, err := exec.Command(binary, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "imgbuild "+testVersion+"\n") {
		t.Errorf("version:\n%s", out)
	}
	head, _ := exec.Command("git", "-C", repoRoot(t), "rev-parse", "HEAD").Output()
	if !regexp.MustCompile(`commit: +` + strings.TrimSpace(string(head)) + `(-dirty)?\n`).Match(out) {
		t.Errorf("version does not name the commit %s:\n%s", head, out)
	}
}
