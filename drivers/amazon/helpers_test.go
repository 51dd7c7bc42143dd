package amazon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/imgbuild/imgbuild/drivers/amazon"
	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"
	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/drivers/post"
	"github.com/imgbuild/imgbuild/drivers/provision"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// harness is one test's moto (the package's), sshd (the "instance" every
// build connects to), fault injector and registry.
type harness struct {
	t      testing.TB
	moto   *awstest.Server
	sshd   *sshtest.Server
	faults *awstest.Faults
	reg    *engine.Registry
	// hooks, if set, run around every step of the builds run starts.
	hooks *step.Hooks

	amis  map[string]string // region → sourceAMI
	force bool              // runs are run --force
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessOn(t, awstest.Start(t))
}

// newHarnessOn is newHarness on a moto server of the test's own.
func newHarnessOn(t testing.TB, moto *awstest.Server) *harness {
	t.Helper()
	sshd := sshtest.Start(t)
	h := &harness{t: t, moto: moto, sshd: sshd, faults: &awstest.Faults{}}
	d := amazon.New(amazon.Options{APIOptions: []func(*middleware.Stack) error{
		moto.Guard(), moto.CloudInit(t, sshd), h.faults.Middleware(),
	}})
	h.reg = engine.NewRegistry()
	local.Register(h.reg)
	provision.Register(h.reg)
	post.Register(h.reg)
	d.Register(h.reg)
	return h
}

// sourceAMI is one of moto's public Amazon Linux AMIs in region.
func (h *harness) sourceAMI(region string) string {
	h.t.Helper()
	if id, ok := h.amis[region]; ok {
		return id
	}
	out, err := h.moto.EC2(region).DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners:  []string{"amazon"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"amzn*"}}, {Name: aws.String("architecture"), Values: []string{"x86_64"}}},
	})
	if err != nil || len(out.Images) == 0 {
		h.t.Fatalf("no public AMI in moto's %s: %v", region, err)
	}
	ids := make([]string, len(out.Images))
	for i, img := range out.Images {
		ids[i] = aws.ToString(img.ImageId)
	}
	sort.Strings(ids)
	if h.amis == nil {
		h.amis = map[string]string{}
	}
	h.amis[region] = ids[0]
	return ids[0]
}

// sshKeywords are the keywords that point a build's SSH at the local sshd.
func (h *harness) sshKeywords() string {
	return fmt.Sprintf(`ssh_host = "127.0.0.1", ssh_port = %d, ssh_username = %q, ssh_host_key = %q, ssh_timeout = "20s", wait_delay = "5ms"`,
		h.sshd.Port, h.sshd.User, h.sshd.HostKeyLine)
}

// load evaluates a description written to a fresh workspace.
func (h *harness) load(src string) (*description.Description, error) {
	h.t.Helper()
	root := h.t.TempDir()
	file := filepath.Join(root, "images.star")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return description.Load(description.Options{File: file, Registry: h.reg})
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " error: " + s
}

// run evaluates src and runs it; ctx may be cancelled by the caller.
func (h *harness) run(ctx context.Context, src string, rec *testkit.Recorder) *engine.Summary {
	h.t.Helper()
	d, err := h.load(src)
	if err != nil {
		h.t.Fatalf("load: %v", err)
	}
	if rec == nil {
		rec = &testkit.Recorder{}
	}
	bus := event.NewBus(rec)
	return engine.Run(ctx, d.Graph, h.reg, bus, engine.RunOptions{
		Workspace: d.Root, TempDir: h.t.TempDir(), Parallel: 8, Tracker: step.NewTracker(), CleanupTimeout: 2 * time.Minute, Hooks: h.hooks,
		Force: h.force,
	})
}

// mustRun runs src and fails the test unless every build succeeded.
func (h *harness) mustRun(src string) (*engine.Summary, *testkit.Recorder) {
	h.t.Helper()
	rec := &testkit.Recorder{}
	sum := h.run(context.Background(), src, rec)
	if !sum.OK() {
		var errs []string
		for _, r := range sum.Results {
			errs = append(errs, fmt.Sprintf("%s: %s: %v", r.Build, r.Status, r.Err))
		}
		h.t.Fatalf("run failed:\n%s\nevents:\n%s", strings.Join(errs, "\n"), rec.Log())
	}
	return sum, rec
}

// runOnErrorAbort runs src with --on-error=abort, which must fail it, and
// returns what its leftover events list.
func (h *harness) runOnErrorAbort(src string) (*testkit.Recorder, []string) {
	h.t.Helper()
	d, err := h.load(src)
	if err != nil {
		h.t.Fatal(err)
	}
	rec := &testkit.Recorder{}
	sum := engine.Run(context.Background(), d.Graph, h.reg, event.NewBus(rec), engine.RunOptions{Workspace: d.Root, TempDir: h.t.TempDir(), OnError: step.Abort})
	if sum.OK() {
		h.t.Fatal("the build should fail")
	}
	var items []string
	for _, e := range rec.Of(event.Leftover) {
		items = append(items, e.Items...)
	}
	return rec, items
}

// image describes one AMI.
func (h *harness) image(region, id string) types.Image {
	h.t.Helper()
	out, err := h.moto.EC2(region).DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil || len(out.Images) != 1 {
		h.t.Fatalf("AMI %s in %s: %v (%d found)", id, region, err, len(out.Images))
	}
	return out.Images[0]
}

// removeArtifact deregisters a successful build's AMIs and deletes their
// snapshots, so that tests sharing moto start from the same state.
func (h *harness) removeArtifact(a *engine.Artifact) {
	h.t.Helper()
	if a == nil {
		return
	}
	ids, _ := a.Fields["image_ids"].(map[string]string)
	for region, id := range ids {
		c := h.moto.EC2(region)
		out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
		if err != nil || len(out.Images) == 0 {
			continue
		}
		c.DeregisterImage(context.Background(), &ec2.DeregisterImageInput{ImageId: aws.String(id)})
		for _, m := range out.Images[0].BlockDeviceMappings {
			if m.Ebs != nil && m.Ebs.SnapshotId != nil {
				c.DeleteSnapshot(context.Background(), &ec2.DeleteSnapshotInput{SnapshotId: m.Ebs.SnapshotId})
			}
		}
	}
}

// artifactIDs lists every AMI and snapshot id of a's, for Inventory.Without.
func (h *harness) artifactIDs(a *engine.Artifact) []string {
	h.t.Helper()
	var out []string
	ids, _ := a.Fields["image_ids"].(map[string]string)
	for region, id := range ids {
		out = append(out, id)
		img := h.image(region, id)
		for _, m := range img.BlockDeviceMappings {
			if m.Ebs != nil {
				out = append(out, aws.ToString(m.Ebs.SnapshotId))
			}
		}
	}
	return out
}

func tags(ts []types.Tag) map[string]string {
	out := map[string]string{}
	for _, t := range ts {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}
