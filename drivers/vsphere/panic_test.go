package vsphere

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/panics"
	"github.com/imgbuild/imgbuild/engine/step"
)

// TestAPanicAtEveryStepOfACloneLeavesNothing runs a vsphere_clone with
// every finishing touch (hardware, customization, snapshot, export,
// content library, template) and panics at the start of each of its steps
// in turn (a hook the step runner calls as part of the step): the build
// fails with the panic and its stack, and vcsim holds no VM it made, no
// library item, no export file, as the fault matrix counts them.
func TestAPanicAtEveryStepOfACloneLeavesNothing(t *testing.T) {
	e := newEnv(t)
	// Exports go inside the workspace, as outputs must.
	kw := func(i int) map[string]any {
		return e.cloneKW(map[string]any{
			"vm_name":             fmt.Sprintf("panic-%d", i),
			"CPUs":                2,
			"RAM":                 1024,
			"shutdown_command":    "touch " + e.poweroff,
			"create_snapshot":     true,
			"convert_to_template": true,
			"export":              map[string]any{"output_directory": fmt.Sprintf("exports/%d", i)},
			"content_library_destination": map[string]any{
				"library": vcsimtest.Library, "name": fmt.Sprintf("item-%d", i),
			},
		})
	}
	j, rec := e.job(CloneDef(), "web", kw(0), shell("echo provisioned"))
	// The successful run's VM and item stay: each run below counts only
	// what it adds.
	_, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	steps := rec.Steps("web")
	leaked := 0
	for i, s := range steps {
		t.Run(s, func(t *testing.T) {
			before := e.snapshot(t)
			items := e.sim.LibraryItems(t)
			j, rec := e.job(CloneDef(), "web", kw(i+1), shell("echo provisioned"))
			j.Steps.Hooks = &step.Hooks{Before: func(_ context.Context, _ *event.UI, st step.Step) error {
				if st.Name() == s {
					var m map[string]int
					m[s]++
				}
				return nil
			}}
			_, err := run(context.Background(), CloneDef(), j, false)
			var pe *panics.Error
			if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), s+": panic: assignment to entry in nil map") {
				t.Errorf("err = %v, want the panic at %s", err, s)
			}
			if strings.Contains(err.Error(), "cleanup failed") {
				t.Errorf("a cleanup failed: %v", err)
			}
			stack := false
			for _, ev := range rec.Of(event.Detail) {
				stack = stack || strings.Contains(ev.Message, "panic_test.go")
			}
			if !stack {
				t.Error("the build's log has no stack")
			}
			leaked += len(vcsimtest.New(before, e.sim.VMs(t)))
			e.noLeftovers(t, before)
			for name := range e.sim.LibraryItems(t) {
				if _, ok := items[name]; !ok {
					t.Errorf("library item %s left", name)
				}
			}
			if ents, _ := os.ReadDir(filepath.Join(e.ws, "exports", fmt.Sprint(i+1))); len(ents) > 0 {
				t.Errorf("export files left: %v", ents)
			}
		})
	}
	t.Logf("panics tried: %d (one at each step); VMs left by the build: %d", len(steps), leaked)
}
