package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

var stateBuckets atomic.Int32

// stateBucket makes a bucket in the shared moto server and returns its
// s3:// location.
func stateBucket(t *testing.T) string {
	t.Helper()
	awstest.Start(t)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("imgbuild-state-%d-%d", os.Getpid(), stateBuckets.Add(1))
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	return "s3://" + name + "/ci"
}

// twelveBuilds is a description of 12 local() builds: four chains of
// three, whose last build also consumes the middle build of the next
// chain. Each records what it got.
const twelveBuilds = `
def build(name, env):
    return local(name = name, env = env, provisioners = [shell(inline = [
        "mkdir -p etc",
        "echo \"$FROM\" > etc/from",
        "echo \"$SIDE\" > etc/side",
        "sleep 0.3",
    ])])

middle = []
for chain in range(4):
    first = build("c%d-0" % chain, {"NAME": "first"})
    middle.append(build("c%d-1" % chain, {"FROM": first.id}))
for chain in range(4):
    build("c%d-2" % chain, {"FROM": middle[chain].id, "SIDE": middle[(chain + 1) % 4].id})
`

func TestRunnersSharingS3StateMakeEachBuildOnceAndPassOutputsAcross(t *testing.T) {
	state := stateBucket(t)
	dir := testkit.Workspace(t, map[string]string{"images.star": twelveBuilds})
	t.Setenv(engine.FingerprintKeyEnv, "a key every runner of this test shares")
	var runs []*jsonRun
	for range 3 {
		runs = append(runs, startJSON(t, dir, binary, "run", "--json", "--parallel", "2", "--state", state, "images.star"))
	}
	builtBy := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range r.events {
				if e.Type == event.BuildFinished && e.Status == event.Failed || e.Type == event.Warning || e.Type == event.CleanupFailed {
					t.Logf("runner %d: %s: %s %s %s", i, e.Build, e.Type, e.Message, e.Error)
				}
				if e.Type == event.BuildStarted {
					mu.Lock()
					if prev, dup := builtBy[e.Build]; dup {
						t.Errorf("build %s was made by runner %d and runner %d", e.Build, prev, i)
					}
					builtBy[e.Build] = i
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i, r := range runs {
		if err := r.cmd.Wait(); err != nil {
			t.Errorf("runner %d: %v\n%s", i, err, r.stderr)
		}
	}
	if len(builtBy) != 12 {
		t.Errorf("%d builds were made, want 12: %v", len(builtBy), builtBy)
	}
	across := 0
	edge := func(name, from, file string) {
		got, err := os.ReadFile(filepath.Join(dir, "output", name, "etc", file))
		if err != nil || strings.TrimSpace(string(got)) != "output/"+from {
			t.Errorf("%s got %q from %s (%v)", name, got, from, err)
		}
		if builtBy[name] != builtBy[from] {
			across++
		}
	}
	for chain := range 4 {
		edge(fmt.Sprintf("c%d-1", chain), fmt.Sprintf("c%d-0", chain), "from")
		edge(fmt.Sprintf("c%d-2", chain), fmt.Sprintf("c%d-1", chain), "from")
		edge(fmt.Sprintf("c%d-2", chain), fmt.Sprintf("c%d-1", (chain+1)%4), "side")
	}
	t.Logf("made by runner: %v; %d of 12 edges cross runners", builtBy, across)
	if across == 0 {
		t.Errorf("no output went from a build made by one runner to a build made by another")
	}
}

func TestAKilledRunnersBuildIsTakenOverWhenItsLeaseExpires(t *testing.T) {
	state := stateBucket(t)
	dir := testkit.Workspace(t, map[string]string{"images.star": `
local(name = "slow", provisioners = [shell(inline = ["mkdir -p etc", "while [ ! -e \"$GO\" ]; do sleep 0.1; done", "echo done > etc/done"], env = {"GO": "` + filepath.Join(t.TempDir(), "go") + `"})])
`})
	gate := ""
	{
		b, _ := os.ReadFile(filepath.Join(dir, "images.star"))
		i := strings.Index(string(b), `"GO": "`) + len(`"GO": "`)
		gate = string(b)[i : i+strings.Index(string(b)[i:], `"`)]
	}
	t.Setenv(engine.FingerprintKeyEnv, "a key every runner of this test shares")
	first := startJSON(t, dir, binary, "run", "--json", "--state", state, "--lock-lease", "2s", "images.star")
	first.waitFor(t, "the first runner's build to start", func(e event.Event) bool { return e.Type == event.BuildStarted })
	// Its shell waits for the gate: kill the runner and what it runs.
	first.cmd.Process.Signal(syscall.SIGKILL)
	first.cmd.Wait()
	os.WriteFile(gate, nil, 0o644)

	code, out, errs := imgbuild(t, dir, "run", "--no-color", "--state", state, "--lock-lease", "2s", "images.star")
	if code != 0 {
		t.Fatalf("the second runner exited %d:\n%s\n%s", code, out, errs)
	}
	wantIn(t, "second runner", out, "slow | waiting for ", " pid ", "| slow  | local  | succeeded |")
}

func TestALockHeldPastLockTimeoutNamesItsHolder(t *testing.T) {
	state := stateBucket(t)
	gate := filepath.Join(t.TempDir(), "go")
	dir := testkit.Workspace(t, map[string]string{"images.star": `
local(name = "slow", provisioners = [shell(inline = ["while [ ! -e ` + gate + ` ]; do sleep 0.1; done"])])
`})
	t.Setenv(engine.FingerprintKeyEnv, "a key every runner of this test shares")
	first := startJSON(t, dir, binary, "run", "--json", "--state", state, "images.star")
	first.waitFor(t, "the first runner's build to start", func(e event.Event) bool { return e.Type == event.BuildStarted })
	code, out, _ := imgbuild(t, dir, "run", "--no-color", "--state", state, "--lock-timeout", "1s", "images.star")
	os.WriteFile(gate, nil, 0o644)
	if code != exitBuildFailed {
		t.Errorf("exit %d", code)
	}
	wantIn(t, "the waiting runner", out, `locking the build in `+state+`: build "slow" is locked by `, ` pid `, ` since `, "gave up after waiting --lock-timeout 1s")
	if err := first.cmd.Wait(); err != nil {
		t.Errorf("the first runner: %v\n%s", err, first.stderr)
	}
}
