package vsphere

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/progress"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/engine/panics"
)

// callTimeout bounds one API call made with detached.
const callTimeout = 2 * time.Minute

// detached returns a context for an API call that starts something (a
// clone, a lease, a library item): cancelling the build must not abort the
// call halfway, or the build would not learn what it started and could not
// remove it. The caller checks ctx as soon as the call returns.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
}

// waitTask waits for a task with ctx, reporting its progress under label.
// If ctx ends first, the task goes on; its result is learnt in the cleanup.
func (b *buildEnv) waitTask(ctx context.Context, t *object.Task, label string) (*types.TaskInfo, error) {
	return t.WaitForResult(ctx, b.percentSink(ctx, label))
}

// doTask starts a task with start and waits for it as waitTask does. A
// failure says what it was doing ("powering on /DC0/vm/web: ..."); when
// ctx ended, its cause.
func (b *buildEnv) doTask(ctx context.Context, label, doing string, start func() (*object.Task, error)) error {
	t, err := start()
	if err == nil {
		_, err = b.waitTask(ctx, t, label)
	}
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("%s: %s", doing, explain(err)))
	}
	return nil
}

// percentSink reports a task's progress as percent.
func (b *buildEnv) percentSink(ctx context.Context, label string) progress.Sinker {
	return b.progressSink(ctx, label, 100, "%")
}

// bytesSink reports a transfer of total bytes, received as percent.
func (b *buildEnv) bytesSink(ctx context.Context, label string, total int64) progress.Sinker {
	return b.progressSink(ctx, label, total, "bytes")
}

// progressSink reports progress received as percent as a share of total
// units under label; reports with an error are passed over.
func (b *buildEnv) progressSink(ctx context.Context, label string, total int64, unit string) progress.Sinker {
	ui := b.job.UI
	return progress.SinkFunc(func() chan<- progress.Report {
		ch := make(chan progress.Report)
		panics.Go(ctx, func() {
			for r := range ch {
				if r.Error() == nil {
					ui.Progress(label, int64(float64(total)*float64(r.Percentage())/100), total, unit)
				}
			}
		})
		return ch
	})
}

// vmHandle is the VM the build works on. The clone or create step makes it
// (and its cleanup removes it, once post-processing is over, if the build
// failed or destroy = True); the steps after it work on it; the template
// step makes it a template and the replace step renames it, which they
// record here.
type vmHandle struct {
	env   *buildEnv
	vc    *stepConnect   // the session
	place *stepPlacement // the folder, and the name it is created under

	// name is the name it is created under in place's folder; "" means
	// place.createName. test: it is the tests' clone of the build's VM,
	// removed in any case.
	name string
	test bool

	pending   *object.Task // the task creating it, until its result is known
	vm        *object.VirtualMachine
	path      string // its inventory path
	templated bool
	removed   bool // the VM was removed (destroy = True, or the build failed)
}

// createName is the name the VM is created under.
func (h *vmHandle) createName() string {
	if h.name != "" {
		return h.name
	}
	return h.place.createName
}

// plannedPath is the inventory path the VM is created at.
func (h *vmHandle) plannedPath() string {
	if h.place.folder == nil {
		return h.createName()
	}
	return path.Join(h.place.folder.InventoryPath, h.createName())
}

// adopt records the VM the build created.
func (h *vmHandle) adopt(ref types.ManagedObjectReference) {
	h.vm = object.NewVirtualMachine(h.vc.sess.client.Client, ref)
	h.path = h.plannedPath()
	h.vm.InventoryPath = h.path
	h.pending = nil
}

// remove is the cleanup of the step that creates the VM: once the build
// is over, it removes the VM when the build failed or destroy = True (the
// tests' clone: as soon as the tests are over, in any case). A VM whose
// creation was still running when the build was cancelled is waited for
// and removed too.
func (h *vmHandle) remove(ctx context.Context, failed bool) error {
	b := h.env
	if !failed && !b.fin.Destroy && !h.test {
		return nil
	}
	if h.vm == nil && h.pending != nil {
		info, err := h.pending.WaitForResult(ctx)
		if err != nil {
			// The task failed: vSphere made nothing to remove.
			h.pending = nil
			return nil
		}
		h.adopt(info.Result.(types.ManagedObjectReference))
	}
	if h.vm == nil || h.removed {
		return nil
	}
	why := "the build failed"
	switch {
	case h.test:
		why = "the tests are over"
	case !failed:
		why = "destroy = True"
	}
	b.say("removing %s (%s)", h.path, why)
	if err := b.destroyVM(ctx, h.vm, h.path); err != nil {
		return err
	}
	h.removed = true
	return nil
}

// left says what the VM is, for leftovers.
func (h *vmHandle) left() []string {
	switch {
	case h.vm != nil && !h.removed:
		what := "VM "
		switch {
		case h.templated:
			what = "template "
		case h.test:
			what = "test VM "
		}
		return []string{what + h.path + " (" + h.vm.Reference().Value + ")"}
	case h.pending != nil:
		return []string{"VM " + h.plannedPath() + " (being created by task " + h.pending.Reference().Value + ")"}
	}
	return nil
}

// vmState is what cleanups read before touching a VM.
type vmState struct {
	Marker   string
	Power    types.VirtualMachinePowerState
	Template bool
	Gone     bool
}

// readState reads a VM's marker and power state; Gone is set when it no
// longer exists.
func readState(ctx context.Context, vm *object.VirtualMachine) (vmState, error) {
	var o mo.VirtualMachine
	err := vm.Properties(ctx, vm.Reference(), []string{"config.extraConfig", "config.template", "runtime.powerState"}, &o)
	if err != nil {
		if fault.Is(err, &types.ManagedObjectNotFound{}) {
			return vmState{Gone: true}, nil
		}
		return vmState{}, err
	}
	st := vmState{Power: o.Runtime.PowerState}
	if o.Config != nil {
		st.Template = o.Config.Template
		for _, ov := range o.Config.ExtraConfig {
			if v := ov.GetOptionValue(); v != nil && v.Key == markerKey {
				st.Marker, _ = v.Value.(string)
			}
		}
	}
	return st, nil
}

// destroyVM powers off and removes a VM this build created. It refuses a VM
// that does not carry this build's marker, and does nothing when the VM is
// already gone.
func (b *buildEnv) destroyVM(ctx context.Context, vm *object.VirtualMachine, shown string) error {
	st, err := readState(ctx, vm)
	if err != nil {
		return fmt.Errorf("reading %s before removing it: %s", shown, explain(err))
	}
	if st.Gone {
		return nil
	}
	if st.Marker != b.id {
		return fmt.Errorf("refusing to remove %s: it does not carry this build's mark (%s=%s), so this build did not create it", shown, markerKey, b.id)
	}
	if st.Power == types.VirtualMachinePowerStatePoweredOn || st.Power == types.VirtualMachinePowerStateSuspended {
		if err := powerOff(ctx, vm); err != nil {
			return fmt.Errorf("powering off %s to remove it: %s", shown, explain(err))
		}
	}
	t, err := vm.Destroy(ctx)
	if err == nil {
		err = t.Wait(ctx)
	}
	if err != nil && !fault.Is(err, &types.ManagedObjectNotFound{}) {
		return fmt.Errorf("removing %s: %s", shown, explain(err))
	}
	return nil
}

// powerOff powers a VM off hard; one already off is fine.
func powerOff(ctx context.Context, vm *object.VirtualMachine) error {
	t, err := vm.PowerOff(ctx)
	if err == nil {
		err = t.Wait(ctx)
	}
	if err != nil && !fault.Is(err, &types.InvalidPowerState{}) {
		return err
	}
	return nil
}

// waitPowerState waits until vm reaches state or ctx ends.
func waitPowerState(ctx context.Context, vm *object.VirtualMachine, state types.VirtualMachinePowerState) error {
	pc := property.DefaultCollector(vm.Client())
	return property.Wait(ctx, pc, vm.Reference(), []string{"runtime.powerState"}, func(pcs []types.PropertyChange) bool {
		for _, c := range pcs {
			if c.Name == "runtime.powerState" && c.Val == state {
				return true
			}
		}
		return false
	})
}

// ctxErr returns ctx's cause when ctx ended and err is nil or caused by it.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return context.Cause(ctx)
	}
	return err
}
