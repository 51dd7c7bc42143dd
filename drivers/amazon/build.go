package amazon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/panics"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
)

// BuilderName is the builder's name in descriptions.
const BuilderName = "amazon_ebs"

// Tags imgbuild puts on the temporary resources it makes (instance,
// volumes, key pair, security group, launch template, fleet), so that a
// cleanup can find what a call made even when the call's answer was lost.
const (
	TagBuild = "imgbuild:build" // the build's name
	TagToken = "imgbuild:token" // unique to one run of one build
)

// Def declares the amazon_ebs() builder.
func (d *Driver) Def() *engine.BuilderDef {
	return &engine.BuilderDef{
		Schema: schema.Of(BuilderName,
			"Builds an EBS-backed AMI: launches an instance from source_ami, provisions it over SSH, stops it and captures an AMI, copied to ami_regions. The instance, temporary key pair and security group are always removed; on failure, so is every AMI and snapshot the build made.",
			&Config{}),
		Outputs: []engine.Output{
			{Name: "image_id", Doc: "The AMI's id in the build's region."},
			{Name: "image_ids", Doc: "The AMI's id in every region it is in: region → id."},
			{Name: "snapshot_ids", Doc: "The snapshots of the AMI in the build's region."},
			{Name: "ami_name", Doc: "The AMI's name (the output \"name\" is the build's name)."},
			{Name: "region", Doc: "The build's region."},
		},
		Build:      d.Build,
		Verify:     d.Verify,
		CheckTests: checkTests,
	}
}

// checkTests says why a build cannot have tests: with skip_create_ami
// there is no AMI to launch them on.
func checkTests(config any) error {
	if c, ok := config.(*Config); ok && c.SkipCreateAMI {
		return errors.New("skip_create_ami = True makes no AMI to launch and test: remove tests, or remove skip_create_ami (the tests of an image run on an instance launched from it)")
	}
	return nil
}

// Build runs one amazon_ebs build: the steps described in the package doc,
// each with its cleanup, and returns the AMI as the artifact.
func (d *Driver) Build(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
	cfg, ok := job.Config.(*Config)
	if !ok {
		return nil, fmt.Errorf("%s: config is %T, not *amazon.Config", BuilderName, job.Config)
	}
	if job.Force {
		// run --force: replace this build's previous artifact, an AMI of
		// the same name.
		cfg.ForceDeregister = true
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	s, err := d.newSession(ctx, sessionConfig{Region: cfg.Region, Profile: cfg.Profile, AssumeRole: cfg.AssumeRole, Name: job.Name})
	if err != nil {
		return nil, err
	}
	e := &buildEnv{
		cfg: cfg, job: job, ui: job.UI, s: s, region: cfg.Region, token: token,
		instanceWait: newWaiter(job.UI, cfg.WaitDelay, cfg.InstanceWaitTimeout, "instance_wait_timeout"),
		amiWait:      newWaiter(job.UI, cfg.WaitDelay, cfg.AMIWaitTimeout, "ami_wait_timeout"),
	}
	// Before anything is made: if imgbuild is killed, the next run or
	// imgbuild cleanup finds what the build left by its token.
	if err := e.record(); err != nil {
		return nil, err
	}
	steps, create, copies := e.steps()
	if err := job.Steps.Run(ctx, steps...); err != nil {
		return nil, err
	}
	return e.artifact(create, copies), nil
}

// steps makes the build's steps, in order, each wired to the earlier steps
// whose outputs it reads; create and copies make the artifact.
func (e *buildEnv) steps() (steps []step.Step, create *stepCreateImage, copies *stepCopyImages) {
	c := e.cfg
	prevalidate := &stepPrevalidate{env: e}
	source := &stepSourceAMI{env: e}
	net := &stepNetwork{env: e}
	key := &stepKeyPair{env: e}
	group := &stepSecurityGroup{env: e, net: net}
	run := &stepRunInstance{launch: launch{env: e, source: source, net: net, key: key, group: group}}
	spot := &stepSpotInstance{launch: launch{env: e, source: source, net: net, key: key, group: group}}
	launched, launchStep := &run.launch, step.Step(run)
	if c.SpotPrice != "" {
		launched, launchStep = &spot.launch, spot
	}
	wait := &stepWaitInstance{env: e, launch: launched}
	connect := &stepConnect{env: e, launch: launched, key: key, wait: wait}
	create = &stepCreateImage{env: e, launch: launched, existing: prevalidate}
	copies = &stepCopyImages{env: e, create: create, existing: prevalidate}

	steps = []step.Step{prevalidate, source}
	if e.needsNetwork() {
		steps = append(steps, net)
	}
	steps = append(steps, key, group, launchStep, wait, connect, &engine.ProvisionStep{Job: e.job, Over: connect})
	if c.SkipCreateAMI {
		return steps, create, copies
	}
	if c.SpotPrice == "" {
		// A one-time spot instance cannot be stopped: CreateImage reboots
		// it instead, for the same quiet disks.
		steps = append(steps, &stepStopInstance{env: e, launch: launched, connect: connect})
	}
	if c.ForceDeregister {
		steps = append(steps, &stepDeregister{env: e, existing: prevalidate})
	}
	steps = append(steps, create)
	// Publishing (copies, permissions, the tested tag) comes only after
	// every test passed; a failed test removes the AMI (create's cleanup).
	if e.job.HasTests() {
		steps = append(steps, e.testStep(net, create))
	}
	if len(e.copyRegions()) > 0 {
		steps = append(steps, copies)
	}
	if e.hasAttributes() {
		steps = append(steps, &stepImageAttributes{published{env: e, create: create, copies: copies}})
	}
	if e.job.HasTests() {
		steps = append(steps, &stepTagTested{published{env: e, create: create, copies: copies}})
	}
	return steps, create, copies
}

// testStep launches an instance from the new AMI for the build's tests,
// with a temporary key pair and security group of its own and the build's
// network settings (the subnet and VPC found for the build instance), and
// connects to it as to the build instance; the instance, key pair and
// group are removed as soon as the tests are over. The test machine runs
// on demand, whatever spot_price says: it lives for as long as the tests.
func (e *buildEnv) testStep(net *stepNetwork, create *stepCreateImage) *engine.TestStep {
	key := &stepKeyPair{env: e, test: true}
	group := &stepSecurityGroup{env: e, net: net, test: true}
	run := &stepRunInstance{launch: launch{env: e, source: create, net: net, key: key, group: group, test: true}}
	wait := &stepWaitInstance{env: e, launch: &run.launch}
	connect := &stepConnect{env: e, launch: &run.launch, key: key, wait: wait}
	return &engine.TestStep{Job: e.job, Over: connect, Machine: []step.Step{key, group, run, wait, connect}}
}

// buildEnv is what every step of one amazon_ebs build reads and none
// writes: the config, the job, the session and region, and the build's
// token. What a step learns or makes is its own (its fields), read by the
// later steps that point at it.
type buildEnv struct {
	cfg    *Config
	job    *engine.Job
	ui     *event.UI
	s      *session
	region string
	token  string

	instanceWait, amiWait *waiter
}

// madeImage is an AMI this build made in one region.
type madeImage struct {
	Region    string
	ID        string
	Snapshots []string
}

// copyRegions are the regions the AMI is copied to: ami_regions without
// the build's region and without repeats.
func (e *buildEnv) copyRegions() []string {
	var out []string
	for _, r := range e.cfg.AMIRegions {
		if r != e.region && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// allRegions is the build's region followed by the copy regions.
func (e *buildEnv) allRegions() []string {
	return append([]string{e.region}, e.copyRegions()...)
}

// needsNetwork reports whether the network step has something to find:
// the subnet's VPC and zone, or a filtered subnet or VPC. Without any, the
// instance and the temporary security group go to the default VPC, which
// EC2 picks by itself.
func (e *buildEnv) needsNetwork() bool {
	c := e.cfg
	return c.SubnetID != "" || len(c.SubnetFilter) > 0 || c.VPCID != "" || len(c.VPCFilter) > 0
}

// hasAttributes reports whether the AMI has launch permissions, snapshot
// permissions or a deprecation time to set.
func (e *buildEnv) hasAttributes() bool {
	c := e.cfg
	return len(c.AMIUsers)+len(c.AMIGroups)+len(c.AMIOrgARNs)+len(c.AMIOUARNs)+len(c.SnapshotUsers)+len(c.SnapshotGroups) > 0 || c.DeprecateAt != ""
}

// ownTags are the tags imgbuild puts on the temporary resources it makes.
func (e *buildEnv) ownTags() map[string]string {
	return map[string]string{TagBuild: e.job.Name, TagToken: e.token}
}

// tempName names a temporary resource: "imgbuild-web-1f2e3d4c", or for
// the test machine "imgbuild-web-1f2e3d4c-test".
func (e *buildEnv) tempName(test bool) string {
	name := "imgbuild-" + e.job.Name + "-" + e.token
	if test {
		name += "-test"
	}
	return name
}

// tagSpec is a TagSpecification of rt holding tags merged in order (later
// maps win), or nil when there are none.
func tagSpec(rt types.ResourceType, maps ...map[string]string) []types.TagSpecification {
	merged := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			merged[k] = v
		}
	}
	if len(merged) == 0 {
		return nil
	}
	return []types.TagSpecification{{ResourceType: rt, Tags: ec2Tags(merged)}}
}

func ec2Tags(m map[string]string) []types.Tag {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]types.Tag, len(keys))
	for i, k := range keys {
		out[i] = types.Tag{Key: aws.String(k), Value: aws.String(m[k])}
	}
	return out
}

func tokenFilter(token string) types.Filter {
	return types.Filter{Name: aws.String("tag:" + TagToken), Values: []string{token}}
}

func newToken() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making the build's token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// eachRegion runs fn for every region at once and joins their errors; a
// panic in one fails the build ctx belongs to (panics.Go).
func eachRegion(ctx context.Context, regions []string, fn func(region string) error) error {
	errs := make([]error, len(regions))
	var wg sync.WaitGroup
	for i, r := range regions {
		wg.Add(1)
		panics.Go(ctx, func() {
			defer wg.Done()
			errs[i] = fn(r)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// artifact is the AMI the build made, in every region.
func (e *buildEnv) artifact(create *stepCreateImage, copies *stepCopyImages) *engine.Artifact {
	a := &engine.Artifact{
		Build: e.job.Name, Driver: e.job.Driver, Platform: "aws", Region: e.region,
		Fields: map[string]any{"region": e.region, "ami_name": e.cfg.AMIName},
	}
	if e.cfg.SkipCreateAMI {
		a.Fields["ami_name"] = ""
		a.Fields["image_id"] = ""
		a.Fields["image_ids"] = map[string]string{}
		a.Fields["snapshot_ids"] = []string{}
		return a
	}
	ids := map[string]string{}
	for r, m := range imagesMade(create, copies) {
		ids[r] = m.ID
	}
	main := create.made
	a.ID = main.ID
	snaps := append([]string{}, main.Snapshots...)
	sort.Strings(snaps)
	a.Fields["image_id"] = main.ID
	a.Fields["image_ids"] = ids
	a.Fields["snapshot_ids"] = snaps
	return a
}

// imagesMade are the AMI and its copies, once available: region → image.
func imagesMade(create *stepCreateImage, copies *stepCopyImages) map[string]*madeImage {
	out := copies.available()
	out[create.made.Region] = create.made
	return out
}
