package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/imgbuild/imgbuild/drivers/all"
	"github.com/imgbuild/imgbuild/drivers/amazon"
	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// The environment of a test binary playing imgbuild (TestImgbuildWithMoto).
const (
	childArgs      = "KILLTEST_ARGS"       // imgbuild's arguments, JSON
	childMoto      = "KILLTEST_MOTO"       // moto's URL
	childKeys      = "KILLTEST_KEYS"       // the sshd's authorized_keys
	childKillAfter = "KILLTEST_KILL_AFTER" // SIGKILL itself after this API call
	childCalls     = "KILLTEST_CALLS"      // where to write the API calls made
)

// TestImgbuildWithMoto is imgbuild itself, in a process of its own, with
// the amazon driver pointed at moto as the amazon tests point it (the
// guard, cloud-init on the local sshd, the fault injector): the kill tests
// run the test binary so, with the environment above.
func TestImgbuildWithMoto(t *testing.T) {
	args := os.Getenv(childArgs)
	if args == "" {
		t.Skip("the kill tests run this as imgbuild")
	}
	moto := &awstest.Server{URL: os.Getenv(childMoto)}
	faults := &awstest.Faults{}
	if k, err := strconv.Atoi(os.Getenv(childKillAfter)); err == nil {
		faults.Arm(nil, awstest.Fault{K: k, Mode: awstest.KillAfter})
	}
	d := amazon.New(amazon.Options{APIOptions: []func(*middleware.Stack) error{
		moto.Guard(), moto.CloudInit(t, keyFile(os.Getenv(childKeys))), faults.Middleware(),
	}})
	reg := engine.NewRegistry()
	all.RegisterWith(reg, d)
	registry = func() *engine.Registry { return reg }
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		t.Fatal(err)
	}
	code := run(append([]string{"imgbuild"}, argv...), os.Stdout, os.Stderr)
	if f := os.Getenv(childCalls); f != "" {
		os.WriteFile(f, []byte(strings.Join(faults.Calls(), "\n")), 0o644)
	}
	os.Exit(code)
}

// keyFile installs keys by appending them to an authorized_keys file, as
// the sshd harness does.
type keyFile string

var keyFileMu sync.Mutex

func (k keyFile) AddAuthorizedKey(t testing.TB, line string) {
	keyFileMu.Lock()
	defer keyFileMu.Unlock()
	f, err := os.OpenFile(string(k), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(strings.TrimSpace(line) + "\n")
}

// mototest is a kill test's counterparts and the way to run imgbuild
// against them.
type mototest struct {
	t       *testing.T
	moto    *awstest.Server
	sshd    *sshtest.Server
	regions []string
	dir     string
}

// imgbuild starts the test binary as imgbuild with args in the workspace;
// env adds to its environment.
func (m *mototest) imgbuild(args []string, env ...string) *exec.Cmd {
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestImgbuildWithMoto$", "-test.count=1")
	cmd.Dir = m.dir
	cmd.Env = append(os.Environ(), childArgs+"="+string(a), childMoto+"="+m.moto.URL, childKeys+"="+filepath.Join(m.sshd.Dir, "authorized_keys"))
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// source is an amazon_ebs build in the first region, copied to the second,
// provisioned over SSH on the local sshd.
func (m *mototest) source(amiName string) string {
	return fmt.Sprintf(`amazon_ebs(
    name = "web",
    region = %q,
    source_ami = %q,
    instance_type = "t3.small",
    ssh_host = "127.0.0.1", ssh_port = %d, ssh_username = %q, ssh_host_key = %q, ssh_timeout = "20s", wait_delay = "5ms",
    ami_name = %q,
    ami_regions = [%q],
    provisioners = [shell(inline = ["echo provisioned"])],
)
`, m.regions[0], m.sourceAMI(), m.sshd.Port, m.sshd.User, m.sshd.HostKeyLine, amiName, m.regions[1])
}

func (m *mototest) sourceAMI() string {
	out, err := m.moto.EC2(m.regions[0]).DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners:  []string{"amazon"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"amzn*"}}, {Name: aws.String("architecture"), Values: []string{"x86_64"}}},
	})
	if err != nil || len(out.Images) == 0 {
		m.t.Fatalf("no public AMI in moto's %s: %v", m.regions[0], err)
	}
	ids := make([]string, len(out.Images))
	for i, img := range out.Images {
		ids[i] = aws.ToString(img.ImageId)
	}
	sort.Strings(ids)
	return ids[0]
}

// cleanup runs imgbuild cleanup and checks that what the killed run left
// is gone: nothing in moto beyond baseline, no scratch directory, no
// journal, no process of the run.
func (m *mototest) cleanup(what string, baseline awstest.Inventory, run string) (leaks int) {
	t := m.t
	t.Helper()
	out, err := m.imgbuild([]string{"cleanup"}).CombinedOutput()
	if err != nil {
		t.Errorf("%s: imgbuild cleanup: %v\n%s", what, err, out)
	}
	var left []string
	left = append(left, baseline.Added(m.moto.Inventory(t, m.regions...))...)
	for _, d := range entries(filepath.Join(m.dir, ".imgbuild", "tmp")) {
		left = append(left, "scratch directory "+d)
	}
	for _, j := range entries(filepath.Join(m.dir, ".imgbuild", "journal")) {
		left = append(left, "journal "+j)
	}
	if run != "" {
		for _, p := range processesOf(t, run) {
			left = append(left, "process "+p)
		}
	}
	if len(left) > 0 {
		t.Errorf("%s, then imgbuild cleanup: left\n  %s\ncleanup said:\n%s", what, strings.Join(left, "\n  "), out)
	}
	return len(left)
}

// runOf is the id of the run whose journal is in the workspace.
func (m *mototest) runOf() string {
	for _, j := range entries(filepath.Join(m.dir, ".imgbuild", "journal")) {
		if id, ok := strings.CutSuffix(j, ".jsonl"); ok {
			return id
		}
	}
	return ""
}

// TestAKilledAmazonBuildLeavesNothingAfterImgbuildCleanup kills imgbuild
// (a real process, with SIGKILL) at the start of every step of an
// amazon_ebs build on moto, and right after every API call that creates
// something, then runs imgbuild cleanup: instances, key pairs, security
// groups, images, snapshots and volumes are all gone (counted as the
// amazon fault tests count them), and so are the scratch directory, the
// run's processes and its journal. Packer leaks in this case.
func TestAKilledAmazonBuildLeavesNothingAfterImgbuildCleanup(t *testing.T) {
	m := &mototest{t: t, moto: awstest.Start(t), sshd: sshtest.Start(t), regions: []string{"eu-west-2", "ap-northeast-3"}}
	m.dir = testkit.Workspace(t, map[string]string{"images.star": m.source("kill-dry")})

	// A run to its end: the steps it takes and the calls it makes.
	callsFile := filepath.Join(t.TempDir(), "calls")
	r := startEvents(t, m.imgbuild([]string{"run", "images.star", "--json"}, childCalls+"="+callsFile))
	var steps []string
	for e := range r.events {
		if e.Type == event.StepStarted && e.Build == "web" {
			steps = append(steps, e.Step)
		}
	}
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("the build without a kill: %v\n%s", err, r.stderr)
	}
	data, _ := os.ReadFile(callsFile)
	calls := strings.Split(string(data), "\n")
	// What the successful build made stays: the kills count from here.
	baseline := m.moto.Inventory(t, m.regions...)

	n, leaks, tried := 0, 0, 0
	next := func() {
		n++
		os.WriteFile(filepath.Join(m.dir, "images.star"), []byte(m.source(fmt.Sprintf("kill-%d", n))), 0o644)
	}
	for _, s := range steps {
		next()
		r := startEvents(t, m.imgbuild([]string{"run", "images.star", "--json"}))
		r.waitFor(t, "step "+s, func(e event.Event) bool { return e.Type == event.StepStarted && e.Step == s })
		r.kill(t)
		tried++
		leaks += m.cleanup("killed at step "+s, baseline, m.runOf())
		baseline = m.moto.Inventory(t, m.regions...) // count each leak once
	}
	for k, c := range calls {
		if !createsSomething(c) {
			continue
		}
		next()
		what := fmt.Sprintf("killed after call %d (%s)", k+1, c)
		cmd := m.imgbuild([]string{"run", "images.star", "--json"}, fmt.Sprintf("%s=%d", childKillAfter, k+1))
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || !ee.Sys().(syscall.WaitStatus).Signaled() {
			t.Errorf("%s: imgbuild was not killed: %v", what, err)
		}
		tried++
		leaks += m.cleanup(what, baseline, m.runOf())
		baseline = m.moto.Inventory(t, m.regions...)
	}
	t.Logf("kills tried: %d (%d steps, and after each of the calls that create something of %d); leaks found: %d", tried, len(steps), len(calls), leaks)
}

// createsSomething says whether an API call ("EC2.RunInstances eu-west-2")
// makes something a build must remove.
func createsSomething(call string) bool {
	f := strings.Fields(call)
	if len(f) == 0 {
		return false
	}
	op := strings.TrimPrefix(f[0], "EC2.")
	for _, p := range []string{"Run", "Create", "Import", "Copy", "Request"} {
		if strings.HasPrefix(op, p) {
			return true
		}
	}
	return false
}
