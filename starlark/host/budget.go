package host

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"go.starlark.net/starlark"

	"github.com/imgbuild/imgbuild/engine/retry"
)

// DefaultMaxMemory bounds the memory one evaluation may hold: 2 GiB.
const DefaultMaxMemory = 2 << 30

// checkEvery is how many Starlark steps a thread runs between two
// checkpoints of the budget; watchEvery is how often the heap is looked at
// while a description runs, to catch a few steps that allocate a lot
// ("x" * 10**7 is one step).
const (
	checkEvery = 1 << 14
	watchEvery = time.Millisecond
)

// heapMetric is the bytes of heap objects, live or not yet swept: it grows
// with every allocation, as soon as it is made.
const heapMetric = "/memory/classes/heap/objects:bytes"

// budget is what one evaluation may spend, shared by the threads of every
// module it loads: one step count over the whole description, and one
// bound on the memory it holds.
//
// go.starlark.net counts steps per thread and has no allocation
// accounting, so the budget keeps the sum itself: each thread stops at a
// checkpoint every checkEvery steps (OnMaxSteps), where the steps of every
// thread so far are added up and the heap is measured. Between
// checkpoints, a watcher goroutine measures the heap every millisecond and
// cancels the running threads when it is over. Memory is the Go heap's
// growth since the evaluation began; when it is over the bound, a garbage
// collection runs first, so that only what the description still holds
// counts. A single step allocates at most what go.starlark.net allows one
// operation (1 GiB for a repeat, the sum of its operands for a
// concatenation), so the bound holds within that.
type budget struct {
	maxSteps uint64
	maxMem   uint64
	base     uint64 // heap bytes when the evaluation began

	mu       sync.Mutex
	finished uint64 // steps of threads that have finished
	active   []*starlark.Thread
	reason   string // why the evaluation was stopped, once it was
	stop     chan struct{}
	done     sync.WaitGroup
}

func newBudget(maxSteps, maxMem uint64) *budget {
	if maxSteps == 0 {
		maxSteps = DefaultMaxSteps
	}
	if maxMem == 0 {
		maxMem = DefaultMaxMemory
	}
	b := &budget{maxSteps: maxSteps, maxMem: maxMem, base: heapBytes(), stop: make(chan struct{})}
	b.done.Add(1)
	go b.watch()
	return b
}

// close stops the watcher.
func (b *budget) close() {
	close(b.stop)
	b.done.Wait()
}

// begin attaches t to the budget before it runs.
func (b *budget) begin(t *starlark.Thread) {
	t.OnMaxSteps = b.checkpoint
	b.mu.Lock()
	defer b.mu.Unlock()
	b.active = append(b.active, t)
	if b.reason != "" {
		t.Cancel(b.reason)
	}
	b.nextCheckpoint(t)
}

// end detaches t once it has finished, counting its steps; resumed is the
// thread that continues (the one whose load() ran t), or nil.
func (b *budget) end(t, resumed *starlark.Thread) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, a := range b.active {
		if a == t {
			b.active = append(b.active[:i], b.active[i+1:]...)
			break
		}
	}
	b.finished += t.ExecutionSteps()
	if resumed != nil {
		b.nextCheckpoint(resumed)
	}
}

// spent is the steps of every thread so far. The caller holds mu.
func (b *budget) spent() uint64 {
	n := b.finished
	for _, a := range b.active {
		n += a.ExecutionSteps()
	}
	return n
}

// nextCheckpoint sets t's next stop: checkEvery steps on, or where the
// whole budget runs out if that is sooner. The caller holds mu.
func (b *budget) nextCheckpoint(t *starlark.Thread) {
	left := uint64(0)
	if s := b.spent(); s < b.maxSteps {
		left = b.maxSteps - s
	}
	// At least one step: a limit of 0 would read as none at all.
	t.SetMaxExecutionSteps(t.ExecutionSteps() + max(1, min(left, checkEvery)))
}

// checkpoint is every thread's OnMaxSteps: it stops the evaluation when
// the steps are spent or the memory is over, and otherwise lets the thread
// run to its next checkpoint.
func (b *budget) checkpoint(t *starlark.Thread) {
	b.mu.Lock()
	over := b.spent() >= b.maxSteps
	b.mu.Unlock()
	switch {
	case over:
		b.cancel(fmt.Sprintf("too many steps: the description ran more than %d steps, the limit for one evaluation with all the modules it loads (raise it with --max-steps or IMGBUILD_MAX_STEPS)", b.maxSteps))
	case b.memoryOver():
		b.cancelMemory()
	}
	b.mu.Lock()
	b.nextCheckpoint(t)
	b.mu.Unlock()
}

// watch measures the heap while the evaluation runs.
func (b *budget) watch() {
	defer b.done.Done()
	retry.Every(b.stop, watchEvery, func() bool {
		if b.memoryOver() {
			b.cancelMemory()
			return false
		}
		return true
	})
}

// memoryOver reports whether the evaluation holds more than its bound,
// collecting garbage first when the heap alone says so.
func (b *budget) memoryOver() bool {
	if b.used() <= b.maxMem {
		return false
	}
	runtime.GC()
	return b.used() > b.maxMem
}

func (b *budget) used() uint64 {
	if h := heapBytes(); h > b.base {
		return h - b.base
	}
	return 0
}

func (b *budget) cancelMemory() {
	b.cancel(fmt.Sprintf("out of memory: the description holds more than %s, the limit for one evaluation (raise it with --max-memory or IMGBUILD_MAX_MEMORY)", formatBytes(b.maxMem)))
}

// cancel stops every running thread, and any that starts later, with reason.
func (b *budget) cancel(reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reason == "" {
		b.reason = reason
	}
	for _, a := range b.active {
		a.Cancel(b.reason)
	}
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// formatBytes writes n in the largest binary unit that keeps it whole.
func formatBytes(n uint64) string {
	for _, u := range []struct {
		name  string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if size := uint64(1) << u.shift; n >= size && n%size == 0 {
			return fmt.Sprintf("%d %s", n/size, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
