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
	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
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
		Build: d.Build,
	}
}

// Build runs one amazon_ebs build: the steps described in the package doc,
// each with its cleanup, and returns the AMI as the artifact.
func (d *Driver) Build(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
	cfg, ok := job.Config.(*Config)
	if !ok {
		return nil, fmt.Errorf("%s: config is %T, not *amazon.Config", BuilderName, job.Config)
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	s, err := d.newSession(ctx, sessionConfig{Region: cfg.Region, Profile: cfg.Profile, AssumeRole: cfg.AssumeRole, Name: job.Name})
	if err != nil {
		return nil, err
	}
	b := &build{
		d: d, cfg: cfg, job: job, ui: job.UI, s: s, region: cfg.Region, token: token,
		instanceWait: newWaiter(job.UI, cfg.WaitDelay, cfg.InstanceWaitTimeout, "instance_wait_timeout"),
		amiWait:      newWaiter(job.UI, cfg.WaitDelay, cfg.AMIWaitTimeout, "ami_wait_timeout"),
		images:       map[string]*madeImage{},
		existing:     map[string][]types.Image{},
	}
	if err := job.Steps.Run(ctx, b.steps()...); err != nil {
		return nil, err
	}
	return b.artifact(), nil
}

// steps lists the build's steps, in order.
func (b *build) steps() []step.Step {
	c := b.cfg
	steps := []step.Step{&stepPrevalidate{b: b}, &stepSourceAMI{b: b}}
	if b.needsNetwork() {
		steps = append(steps, &stepNetwork{b: b})
	}
	steps = append(steps, &stepKeyPair{b: b}, &stepSecurityGroup{b: b})
	if c.SpotPrice != "" {
		steps = append(steps, &stepSpotInstance{b: b})
	} else {
		steps = append(steps, &stepRunInstance{b: b})
	}
	steps = append(steps,
		&stepWaitInstance{b: b},
		&stepConnect{b: b},
		&step.Func{StepName: "provision", RunFunc: func(ctx context.Context) error { return b.job.Provision(ctx, b.comm) }},
	)
	if c.SkipCreateAMI {
		return steps
	}
	if c.SpotPrice == "" {
		// A one-time spot instance cannot be stopped: CreateImage reboots
		// it instead, for the same quiet disks.
		steps = append(steps, &stepStopInstance{b: b})
	}
	if c.ForceDeregister {
		steps = append(steps, &stepDeregister{b: b})
	}
	steps = append(steps, &stepCreateImage{b: b})
	if len(b.copyRegions()) > 0 {
		steps = append(steps, &stepCopyImages{b: b})
	}
	if b.hasAttributes() {
		steps = append(steps, &stepImageAttributes{b: b})
	}
	return steps
}

// build is one amazon_ebs build's state, shared by its steps: each step
// fills in what it learned or made, and its cleanup reads it.
type build struct {
	d      *Driver
	cfg    *Config
	job    *engine.Job
	ui     *event.UI
	s      *session
	region string
	token  string

	instanceWait, amiWait *waiter

	// existing are AMIs of the same name found by pre-validate, per region,
	// for force_deregister to replace.
	existing map[string][]types.Image
	source   *types.Image
	vpcID    string
	subnetID string
	az       string
	key      *ssh.Key // the build's key pair, unless ssh_keypair_name
	keyName  string
	groupIDs []string

	instanceID string
	instance   *types.Instance
	hostKey    gossh.PublicKey
	comm       *ssh.Communicator

	mu     sync.Mutex
	images map[string]*madeImage // region → the AMI made there
}

// madeImage is an AMI this build made in one region.
type madeImage struct {
	Region    string
	ID        string
	Snapshots []string
}

func (b *build) setImage(m *madeImage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.images[m.Region] = m
}

func (b *build) image(region string) *madeImage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.images[region]
}

// copyRegions are the regions the AMI is copied to: ami_regions without
// the build's region and without repeats.
func (b *build) copyRegions() []string {
	var out []string
	for _, r := range b.cfg.AMIRegions {
		if r != b.region && !contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// allRegions is the build's region followed by the copy regions.
func (b *build) allRegions() []string {
	return append([]string{b.region}, b.copyRegions()...)
}

// needsNetwork reports whether the network step has something to find:
// the subnet's VPC and zone, or a filtered subnet or VPC. Without any, the
// instance and the temporary security group go to the default VPC, which
// EC2 picks by itself.
func (b *build) needsNetwork() bool {
	c := b.cfg
	return c.SubnetID != "" || len(c.SubnetFilter) > 0 || c.VPCID != "" || len(c.VPCFilter) > 0
}

// hasAttributes reports whether the AMI has launch permissions, snapshot
// permissions or a deprecation time to set.
func (b *build) hasAttributes() bool {
	c := b.cfg
	return len(c.AMIUsers)+len(c.AMIGroups)+len(c.AMIOrgARNs)+len(c.AMIOUARNs)+len(c.SnapshotUsers)+len(c.SnapshotGroups) > 0 || c.DeprecateAt != ""
}

// ownTags are the tags imgbuild puts on the temporary resources it makes.
func (b *build) ownTags() map[string]string {
	return map[string]string{TagBuild: b.job.Name, TagToken: b.token}
}

// tempName names a temporary resource: "imgbuild-web-1f2e3d4c".
func (b *build) tempName() string { return "imgbuild-" + b.job.Name + "-" + b.token }

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

// eachRegion runs fn for every region at once and joins their errors.
func eachRegion(regions []string, fn func(region string) error) error {
	errs := make([]error, len(regions))
	var wg sync.WaitGroup
	for i, r := range regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(r)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// artifact is the AMI the build made, in every region.
func (b *build) artifact() *engine.Artifact {
	a := &engine.Artifact{
		Build: b.job.Name, Driver: b.job.Driver, Platform: "aws", Region: b.region,
		Fields: map[string]any{"region": b.region, "ami_name": b.cfg.AMIName},
	}
	if b.cfg.SkipCreateAMI {
		a.Fields["ami_name"] = ""
		a.Fields["image_id"] = ""
		a.Fields["image_ids"] = map[string]string{}
		a.Fields["snapshot_ids"] = []string{}
		return a
	}
	ids := map[string]string{}
	b.mu.Lock()
	for r, m := range b.images {
		ids[r] = m.ID
	}
	main := b.images[b.region]
	b.mu.Unlock()
	a.ID = main.ID
	snaps := append([]string{}, main.Snapshots...)
	sort.Strings(snaps)
	a.Fields["image_id"] = main.ID
	a.Fields["image_ids"] = ids
	a.Fields["snapshot_ids"] = snaps
	return a
}
