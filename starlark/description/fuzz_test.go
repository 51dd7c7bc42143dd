package description

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
)

// FuzzEvaluate evaluates arbitrary descriptions: whatever the input, Load
// returns a graph or an error, never panics, and a graph it returns can be
// planned.
func FuzzEvaluate(f *testing.F) {
	seeds := []string{
		`box(name = "a", region = "x")`,
		"base = box(name = \"base\", region = \"x\")\nbox(name = \"web\", region = \"x\", image = \"pre-\" + base.image_id + \"-suf\", depends_on = [base])\n",
		"v = var(\"v\", default = 1)\nbox(name = \"b%d\" % v, region = \"x\", size = v, tags = {\"a\": \"${b1.id}\"})\n",
		"s = var(\"s\", default = \"x\", sensitive = True)\nbox(name = \"a\", region = s + \"y\", provisioners = [step(inline = [\"echo\"], env = {\"S\": s})], post = [post_step()])\n",
		"load(\"//lib.star\", \"x\")\n",
		"load(\"@stdlib//apt.star\", \"apt_install\")\n",
		"box(name = \"a\", region = \"x\", depends_on = [\"b\"])\nbox(name = \"b\", region = \"x\", depends_on = [\"a\"])\n",
		"def f(n):\n    return f(n - 1) if n else 0\nf(10)\n",
		"x = [i for i in range(100)]\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	reg := testRegistry()
	root := f.TempDir()
	os.WriteFile(filepath.Join(root, "lib.star"), []byte("x = 1\n"), 0o644)
	file := filepath.Join(root, "images.star")
	f.Fuzz(func(t *testing.T, src string) {
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := Load(Options{File: file, Registry: reg, MaxSteps: 200_000})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		p := engine.MakePlan(d.Graph, reg, d.Root)
		if len(p.Builds) != len(d.Graph.Nodes) {
			t.Fatalf("plan has %d builds, graph %d", len(p.Builds), len(d.Graph.Nodes))
		}
	})
}
