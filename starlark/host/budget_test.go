package host

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// spin is a module that runs about n*4 steps.
func spin(n int) string {
	return "def _spin():\n    x = 0\n    for i in range(" + strconv.Itoa(n) + "):\n        x += 1\n    return x\nv = _spin()\n"
}

func TestOneStepBudgetCoversEveryModule(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"top.star": "load('//a.star', a = 'v')\nload('//b.star', b = 'v')\nload('//c.star', c = 'v')\n",
		"a.star":   spin(1000),
		"b.star":   spin(1000),
		"c.star":   spin(1000),
	})
	// Alone, each module fits in the budget.
	h := newHost(root)
	h.MaxSteps = 25000
	if _, err := h.Exec(filepath.Join(root, "a.star")); err != nil {
		t.Fatalf("one module alone: %v", err)
	}
	// Together they do not.
	_, err := h.Exec(filepath.Join(root, "top.star"))
	want := "Starlark computation cancelled: too many steps: the description ran more than 25000 steps, the limit for one evaluation with all the modules it loads (raise it with --max-steps or IMGBUILD_MAX_STEPS)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v\nwant it to contain %q", err, want)
	}
}

func TestMemoryBoundStopsADescriptionThatHoldsTooMuch(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		// 600 strings of 1 MB each, all kept: 600 MB.
		"top.star": "box = []\nfor i in range(600):\n    box.append('x' * 1000000 + str(i))\n",
	})
	h := newHost(root)
	h.MaxMemory = 64 << 20
	_, err := h.Exec(filepath.Join(root, "top.star"))
	want := "Starlark computation cancelled: out of memory: the description holds more than 64 MiB, the limit for one evaluation (raise it with --max-memory or IMGBUILD_MAX_MEMORY)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v\nwant %q", err, want)
	}
	if !strings.HasPrefix(err.Error(), "top.star:3:") {
		t.Errorf("error %q does not name the line that allocates", err)
	}
}

func TestMemoryBoundCountsOnlyWhatIsKept(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		// 200 MB allocated in all, but only 1 MB held at a time.
		"top.star": "n = 0\nfor i in range(200):\n    s = 'x' * 1000000 + str(i)\n    n += len(s)\n",
	})
	h := newHost(root)
	h.MaxMemory = 64 << 20
	if _, err := h.Exec(filepath.Join(root, "top.star")); err != nil {
		t.Fatalf("garbage counted against the bound: %v", err)
	}
}
