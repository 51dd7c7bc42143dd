package filelock

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestLockHolderChild holds the lock named by FILELOCK_TEST until its
// standard input closes; run by the tests below.
func TestLockHolderChild(t *testing.T) {
	p := testkit.ChildEnv(t, "FILELOCK_TEST", "TestAWriterWaitsForAnotherProcessAndSaysWhy")
	unlock, err := Lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	var b [1]byte
	os.Stdin.Read(b[:])
	unlock()
}

func TestAWriterWaitsForAnotherProcessAndSaysWhy(t *testing.T) {
	p := filepath.Join(t.TempDir(), "locks", "state.json.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolderChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FILELOCK_TEST="+p)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	var b [7]byte
	if _, err := out.Read(b[:]); err != nil || string(b[:]) != "locked\n" {
		t.Fatalf("the child did not take the lock: %v %q", err, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := With(ctx, p, func() error { t.Error("ran while another process held the lock"); return nil })
	if err == nil || !strings.Contains(err.Error(), "waiting for the lock "+p+": another imgbuild run is writing the same file: context deadline exceeded") {
		t.Errorf("err = %v", err)
	}
	stdin.Close() // the child lets go
	ran := false
	if err := With(context.Background(), p, func() error { ran = true; return nil }); err != nil || !ran {
		t.Errorf("after the other process let go: %v, ran %v", err, ran)
	}
}

func TestGoroutinesOfOneProcessTakeTurns(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	var mu sync.Mutex
	inside, most := 0, 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			With(context.Background(), p, func() error {
				mu.Lock()
				inside++
				most = max(most, inside)
				mu.Unlock()
				runtime.Gosched()
				mu.Lock()
				inside--
				mu.Unlock()
				return nil
			})
		}()
	}
	wg.Wait()
	if most != 1 {
		t.Errorf("%d writers held the lock at once", most)
	}
}

func TestForKeepsLocksOutOfTheOutputDirectory(t *testing.T) {
	got := For("/ws", "/ws/out/manifest.json")
	if !strings.HasPrefix(got, "/ws/.imgbuild/locks/manifest.json-") || !strings.HasSuffix(got, ".lock") {
		t.Errorf("For = %s", got)
	}
	if For("/ws", "/ws/a/manifest.json") == got {
		t.Error("two files share a lock")
	}
	if got := For("", "/x/m.json"); got != "/x/.m.json.lock" {
		t.Errorf("without a workspace: %s", got)
	}
}
