package description

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestLoadedModulesCountInFingerprintsByLabel: a build counts the content
// hash of every module the description loaded, and a file read from a
// module is named by its label, so that two machines with their module
// caches in different places agree; changing the module names it as the
// reason.
func TestLoadedModulesCountInFingerprintsByLabel(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"ws/imgbuild.mod":         `dep("shared", path = "../shared")` + "\n",
		"ws/images.star":          "load('@shared//steps.star', 'setup')\nbox(name = 'a', region = 'x', provisioners = [setup()])\n",
		"shared/steps.star":       "def setup():\n    return step(source = 'scripts/setup.sh')\n",
		"shared/scripts/setup.sh": "echo one\n",
		"shared/README.md":        "not loaded, still content\n",
	})
	inputs := func() (*Description, *engine.Inputs) {
		d, err := Load(Options{File: filepath.Join(root, "ws/images.star"), Registry: testRegistry(), ModuleCache: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		f := &engine.Fingerprinter{Registry: testRegistry(), Workspace: d.Root, Modules: d.ModuleHashes, ModuleDirs: d.ModuleDirs}
		in, err := f.Inputs(context.Background(), d.Graph.Nodes[0], nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return d, in
	}
	d, before := inputs()
	if h := d.ModuleHashes["shared"]; !strings.HasPrefix(h, "sha256:") || before.Modules["shared"] != h {
		t.Fatalf("module hashes %v, inputs %v", d.ModuleHashes, before.Modules)
	}
	if _, ok := before.Files["@shared//scripts/setup.sh"]; !ok {
		t.Errorf("the module's script is not named by its label: %v", before.Files)
	}
	if s := before.Steps[0].Fields["source"]; s != `"@shared//scripts/setup.sh"` {
		t.Errorf("the step's source is shown as %s", s)
	}
	testkit.WriteFile(t, filepath.Join(root, "shared/README.md"), "edited\n")
	_, after := inputs()
	why := engine.Why(&engine.BuildState{Inputs: before, Fingerprint: before.Fingerprint()}, after)
	if strings.Join(why, "; ") != "module shared changed" {
		t.Errorf("why = %q", why)
	}
}

// TestNoModulesNoCache: a workspace that declares no module needs no
// module cache, and its fingerprints carry no module.
func TestNoModulesNoCache(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{"images.star": "box(name = 'a', region = 'x')\n"})
	d, err := Load(Options{File: filepath.Join(root, "images.star"), Registry: testRegistry(), ModuleCache: "/nonexistent/cache"})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.ModuleHashes) != 0 {
		t.Errorf("hashes %v", d.ModuleHashes)
	}
	if _, err := os.Stat("/nonexistent/cache"); err == nil {
		t.Error("a cache was made")
	}
}
