package engine

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/journal"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/value"
)

// Output documents one output of a builder that other builds can refer to
// (base.image_id).
type Output struct {
	Name string
	Doc  string
}

// CommonOutputs are the outputs every build has.
var CommonOutputs = []Output{
	{Name: "id", Doc: "The artifact's id (an AMI id, a VM path, a directory)."},
	{Name: "files", Doc: "The artifact's files, as a list of paths."},
	{Name: "name", Doc: "The build's name."},
}

// BuilderDef declares a builder: the schema of its config, its outputs and
// the function that runs one build.
type BuilderDef struct {
	Schema  *schema.Schema
	Outputs []Output // beyond CommonOutputs
	// Build runs a build whose config has been decoded into job.Config (a
	// pointer to the schema's struct) and returns its artifact.
	Build func(ctx context.Context, job *Job) (*Artifact, error)
	// Version counts in every build's fingerprint: raise it when the same
	// settings make a different image than before ("" is version 0).
	Version string
	// CheckTests, if set, says that the builder runs a build's tests = [...]
	// (it places an engine.TestStep after capturing its image) and returns
	// why a build with the given config (decoded, possibly with deferred
	// values) cannot have them: amazon_ebs with skip_create_ami makes no
	// image to launch. Nil means the builder cannot test its images, and
	// tests on its builds are refused at evaluation.
	CheckTests func(config any) error
	// Verify, if set, confirms that artifacts this driver made still exist
	// and are intact (an AMI available in every region, a template with
	// its marker), so that an unchanged build can be skipped. It gets
	// every check of a run at once, to batch them (one DescribeImages
	// call per region), and returns one error per check: nil when the
	// artifact is there, else what is gone. A build whose driver has no
	// Verify and whose artifact has no local files always runs. Local
	// files are checked against their sha256 by the engine itself.
	Verify func(ctx context.Context, checks []ArtifactCheck) []error
	// PlanNotes, if set, says for the plan what a run of a build with this
	// config would reuse rather than make (rootfs: the checkpoint that
	// spares debootstrap). It reads only this machine, never the network.
	// Builds whose settings need an upstream artifact or a run-time value
	// get no notes.
	PlanNotes func(config any) []string
}

// ArtifactCheck is one artifact to verify: the build's config, decoded
// with its references resolved from the upstream artifacts in state, and
// the artifact state recorded.
type ArtifactCheck struct {
	Build    string
	Config   any
	Artifact *Artifact
}

// HasOutput reports whether builds of this kind have the named output.
func (d *BuilderDef) HasOutput(name string) bool {
	for _, o := range d.AllOutputs() {
		if o.Name == name {
			return true
		}
	}
	return false
}

// AllOutputs is CommonOutputs followed by the driver's own.
func (d *BuilderDef) AllOutputs() []Output {
	return append(append([]Output(nil), CommonOutputs...), d.Outputs...)
}

// Provisioner changes a machine through its communicator.
type Provisioner interface {
	Provision(ctx context.Context, env *ProvisionEnv) error
}

// ProvisionEnv is what a provisioner works with.
type ProvisionEnv struct {
	UI   *event.UI
	Comm Communicator
	// Build is the build's name; Driver its builder's.
	Build, Driver string
	// WorkDir is a scratch directory on this machine, removed after the
	// build.
	WorkDir string
	// Workspace is the description's root directory: relative local paths
	// are taken from it.
	Workspace string
	// Outputs are the build's outputs (a file downloaded from the
	// machine); nil until OutputSet makes it.
	Outputs *output.Set
	// Force is the run's --force: replace this build's previous artifacts.
	Force bool
}

// OutputSet returns the build's outputs, made on first use when the engine
// gave none (a driver's own tests).
func (e *ProvisionEnv) OutputSet() *output.Set {
	return outputSet(&e.Outputs, e.Workspace, e.Build, e.Force)
}

// outputSet returns *set, made first if nil.
func outputSet(set **output.Set, workspace, build string, force bool) *output.Set {
	if *set == nil {
		*set = output.NewSet(workspace, build, force)
	}
	return *set
}

// ProvisionerDef declares a provisioner: its schema and a constructor from
// a decoded config.
type ProvisionerDef struct {
	Schema *schema.Schema
	New    func(config any) (Provisioner, error)
	// Version counts in the fingerprint of every build that uses it.
	Version string
	// Filter, if set, says whether the provisioner applies to a build (its
	// only/except keywords).
	Filter func(config any, build string) bool
}

// PostProcessor turns an artifact into another (a checksum file, a box, a
// manifest entry).
type PostProcessor interface {
	PostProcess(ctx context.Context, env *PostEnv, in *Artifact) (*Artifact, error)
}

// PostEnv is what a post-processor works with.
type PostEnv struct {
	UI      *event.UI
	Build   string
	Driver  string
	WorkDir string
	// Workspace is the description's root directory: relative local paths
	// (outputs) are taken from it.
	Workspace string
	// Redact removes secrets from text a post-processor writes to disk.
	Redact func(string) string
	// Outputs are the build's outputs: a post-processor writes its files
	// through them, so that a later failure removes them; nil until
	// OutputSet makes it.
	Outputs *output.Set
	// Force is the run's --force: replace this build's previous artifacts.
	Force bool
	// Report is what the build learned about its image (tests, packages,
	// fingerprint, upstream artifacts), for the manifest; nil in a
	// post-processor's own tests.
	Report *Report
}

// OutputSet returns the build's outputs, made on first use when the engine
// gave none (a post-processor's own tests).
func (e *PostEnv) OutputSet() *output.Set {
	return outputSet(&e.Outputs, e.Workspace, e.Build, e.Force)
}

// PostProcessorDef declares a post-processor.
type PostProcessorDef struct {
	Schema *schema.Schema
	New    func(config any) (PostProcessor, error)
	// Version counts in the fingerprint of every build that uses it.
	Version string
	// Outputs are what a build gains by using the post-processor, for
	// other builds to refer to (img.ova): the artifact it returns sets
	// each in its Fields, and the engine keeps them in the build's final
	// artifact even when a later post-processor drops its input's fields.
	Outputs []Output
	// Provides, if set, names which of Outputs one use of the
	// post-processor gives, from its settings (vagrant_box(provider =
	// "virtualbox") gives box and box_virtualbox); nil means all of them.
	Provides func(settings *value.Map) []string
}

// LookupDef declares a lookup: a builtin whose value stands for something
// found at run time, such as aws_ami(owners = [...], name = "debian-12-*")
// finding an image id. Its value (a value.Object of the lookup's Kind) can
// be given to a config field whose type decodes it (schema.Decoder); the
// driver resolves it while building.
type LookupDef struct {
	Schema *schema.Schema
	// Resolve finds the value without changing anything, for
	// imgbuild plan --refresh. config is the decoded lookup; build holds
	// the settings of the build it is given to (resolved where they refer
	// to no other build), so that a lookup can default to the build's own
	// region, say.
	Resolve func(ctx context.Context, config any, build *value.Map) (string, error)
	// Context names the build keywords Resolve reads ("region"): one
	// lookup with the same config and context is resolved once per run,
	// however many builds use it.
	Context []string
}

// Registry holds every builder, provisioner, post-processor and lookup by
// name.
type Registry struct {
	Builders       map[string]*BuilderDef
	Provisioners   map[string]*ProvisionerDef
	PostProcessors map[string]*PostProcessorDef
	Lookups        map[string]*LookupDef
	// Reapers remove what a killed run left, per kind of journal entry
	// (see Job.Record); this machine's own kinds are always there.
	Reapers map[string]journal.Reaper
	// States open shared state stores by the scheme of --state ("s3").
	States map[string]StateBackend
}

// AddState registers the state backend of a --state scheme ("s3").
func (r *Registry) AddState(scheme string, open StateBackend) {
	if _, ok := r.States[scheme]; ok {
		panic(fmt.Sprintf("engine: state backend %q registered twice", scheme))
	}
	r.States[scheme] = open
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		Builders:       map[string]*BuilderDef{},
		Provisioners:   map[string]*ProvisionerDef{},
		PostProcessors: map[string]*PostProcessorDef{},
		Lookups:        map[string]*LookupDef{},
		Reapers:        withOutputs(journal.Local()),
		States:         map[string]StateBackend{},
	}
}

// withOutputs adds the reaper of what a killed build's outputs left.
func withOutputs(m map[string]journal.Reaper) map[string]journal.Reaper {
	m[output.JournalKind] = output.Reaper{}
	return m
}

// AddReaper registers the reaper of a kind of journal entry, which the
// driver's builds record through Job.Record.
func (r *Registry) AddReaper(kind string, rp journal.Reaper) {
	if _, ok := r.Reapers[kind]; ok {
		panic(fmt.Sprintf("engine: reaper %q registered twice", kind))
	}
	r.Reapers[kind] = rp
}

// AddLookup registers a lookup under its schema's name.
func (r *Registry) AddLookup(d *LookupDef) {
	r.unique(d.Schema.Name)
	r.Lookups[d.Schema.Name] = d
}

// AddBuilder registers a builder under its schema's name.
func (r *Registry) AddBuilder(d *BuilderDef) {
	r.unique(d.Schema.Name)
	r.Builders[d.Schema.Name] = d
}

// AddProvisioner registers a provisioner under its schema's name.
func (r *Registry) AddProvisioner(d *ProvisionerDef) {
	r.unique(d.Schema.Name)
	r.Provisioners[d.Schema.Name] = d
}

// AddPostProcessor registers a post-processor under its schema's name.
func (r *Registry) AddPostProcessor(d *PostProcessorDef) {
	r.unique(d.Schema.Name)
	r.PostProcessors[d.Schema.Name] = d
}

func (r *Registry) unique(name string) {
	_, b := r.Builders[name]
	_, p := r.Provisioners[name]
	_, pp := r.PostProcessors[name]
	_, l := r.Lookups[name]
	if b || p || pp || l {
		panic(fmt.Sprintf("engine: %q registered twice", name))
	}
}

// Names returns every registered name, sorted.
func (r *Registry) Names() []string {
	out := slices.Collect(maps.Keys(r.Builders))
	out = slices.AppendSeq(out, maps.Keys(r.Provisioners))
	out = slices.AppendSeq(out, maps.Keys(r.PostProcessors))
	out = slices.AppendSeq(out, maps.Keys(r.Lookups))
	slices.Sort(out)
	return out
}

// BuilderKeywords are the keywords every builder takes besides its
// schema's own.
var BuilderKeywords = []string{"name", "provisioners", "error_cleanup", "tests", "post", "depends_on"}

// Keywords lists every registered builtin's keywords with their types as
// the docs say them ("string", "list of dict"): what a tool that writes
// descriptions (imgbuild import) may use.
func (r *Registry) Keywords() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, name := range r.Names() {
		s, _ := r.Schema(name)
		kws := map[string]string{}
		for _, f := range s.Fields {
			kws[f.Keyword] = f.TypeName
		}
		if _, ok := r.Builders[name]; ok {
			for _, k := range BuilderKeywords {
				kws[k] = "list"
			}
		}
		out[name] = kws
	}
	return out
}

// Schema returns the schema registered under name, of any kind.
func (r *Registry) Schema(name string) (*schema.Schema, bool) {
	if d, ok := r.Builders[name]; ok {
		return d.Schema, true
	}
	if d, ok := r.Provisioners[name]; ok {
		return d.Schema, true
	}
	if d, ok := r.PostProcessors[name]; ok {
		return d.Schema, true
	}
	if d, ok := r.Lookups[name]; ok {
		return d.Schema, true
	}
	return nil, false
}

// Job is one build being run: its decoded config and everything a driver
// needs besides.
type Job struct {
	Name   string
	Driver string
	// Config is a pointer to the builder schema's struct, with every
	// reference to another build's output resolved.
	Config any
	// UI reports this build's progress.
	UI *event.UI
	// Steps runs the driver's steps with the run's cleanup policy.
	Steps *step.Runner
	// WorkDir is a scratch directory for this build on this machine, removed
	// when the build ends.
	WorkDir string
	// Workspace is the description's workspace root.
	Workspace string
	// Inputs are the artifacts of the builds this one depends on.
	Inputs map[string]*Artifact
	// Force is the run's --force, the one meaning of which is "replace
	// this build's previous artifacts": an AMI or a VM of the same name,
	// outputs another build made. A driver treats it as its own force
	// keyword set.
	Force bool
	// Outputs are the files the build leaves in the workspace, shared
	// with its provisioners and post-processors; the engine finishes them
	// when the build is over. Nil until OutputSet makes it.
	Outputs *output.Set

	provisioners []namedProvisioner
	errorCleanup []namedProvisioner
	tests        []namedProvisioner
	testsRan     bool
	report       Report
	redact       func(string) string
	journal      *journal.Journal
}

// Record writes to the run's journal, before the build creates something,
// what it is about to create, so that if imgbuild is killed the next run
// or imgbuild cleanup finds it and removes it, through the reaper
// registered for kind. what is for people ("AWS resources tagged
// imgbuild:token=1a2b in eu-west-1"); where is what the reaper needs, and
// never a secret. It returns the entry's id, for Done. An error means the
// entry may not be written: do not create the thing. Without a journal (a
// test calling a driver directly) it records nothing.
//
// What the build records is marked done when the build ends with every
// cleanup done, or kept with --on-error=abort; Done marks one entry
// earlier, once the build removed it itself.
func (j *Job) Record(kind, what string, where map[string]string) (int, error) {
	return j.journal.Record(journal.Entry{Build: j.Name, Kind: kind, What: what, Where: where})
}

// Done marks an entry Record returned as removed by the build itself.
func (j *Job) Done(id int) error { return j.journal.Done(id) }

type namedProvisioner struct {
	kind   string
	pos    string
	label  string // what it works on: "scripts/setup.sh", "echo hi"
	p      Provisioner
	config any // decoded
	obj    *value.Object

	// A test's name, and its time limit: its own timeout keyword's
	// (ownTimeout), else DefaultTestTimeout.
	name       string
	timeout    time.Duration
	ownTimeout bool
}

// OutputSet returns the build's outputs, made on first use when the engine
// gave none (a driver's own tests).
func (j *Job) OutputSet() *output.Set {
	return outputSet(&j.Outputs, j.Workspace, j.Name, j.Force)
}

// Provision runs the build's provisioners in order over comm. Each is
// announced with a ProvisionerStarted event ("shell 2/5 (scripts/setup.sh)"
// in its Message) and ends with ProvisionerFinished. When one fails, the
// error_cleanup provisioners run over the same comm before the error is
// returned (on a context the build's cancellation does not cancel, for at
// most ErrorCleanupTimeout), and what they report is only logged: the
// provisioner's error is the build's. Once every provisioner has passed,
// the packages installed on the machine are listed over comm into the
// build's report (ListPackages), for the manifest and the SBOM.
func (j *Job) Provision(ctx context.Context, comm Communicator) error {
	err := j.provision(ctx, comm, j.provisioners, "provisioner")
	if err == nil {
		return j.listPackages(ctx, comm)
	}
	if len(j.errorCleanup) == 0 {
		return err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ErrorCleanupTimeout)
	defer cancel()
	j.UI.Warn("a provisioner failed: running the %d error_cleanup %s", len(j.errorCleanup), pluralWord(len(j.errorCleanup), "provisioner", "provisioners"))
	if cerr := j.provision(cctx, comm, j.errorCleanup, "error_cleanup"); cerr != nil {
		j.UI.Warn("%v", cerr)
	}
	return err
}

// ErrorCleanupTimeout bounds the error_cleanup provisioners of a build.
var ErrorCleanupTimeout = 10 * time.Minute

func (j *Job) provision(ctx context.Context, comm Communicator, list []namedProvisioner, what string) error {
	for i, np := range list {
		label := fmt.Sprintf("%s %d/%d: %s", what, i+1, len(list), np.kind)
		name := fmt.Sprintf("%s %d/%d", np.kind, i+1, len(list))
		if what != "provisioner" {
			name = what + ": " + name
		}
		if np.label != "" {
			name += " (" + np.label + ")"
		}
		if np.name != "" {
			name += ": " + np.name
		}
		j.UI.Say("%s (%s)", label, np.pos)
		j.UI.Emit(event.Event{Type: event.ProvisionerStarted, Message: name})
		start := time.Now()
		env := &ProvisionEnv{UI: j.UI, Comm: comm, Build: j.Name, Driver: j.Driver, WorkDir: j.WorkDir, Workspace: j.Workspace, Outputs: j.OutputSet(), Force: j.Force}
		err := np.p.Provision(ctx, env)
		j.UI.Emit(event.Event{Type: event.ProvisionerFinished, Message: name, Elapsed: time.Since(start), Error: errString(err)})
		if err != nil {
			return fmt.Errorf("%s at %s: %w", label, np.pos, err)
		}
	}
	return nil
}

// labelKeywords are the keywords whose value says what a provisioner works
// on, in the order they are looked for.
var labelKeywords = []string{"script", "scripts", "source", "sources", "playbook_file", "manifest_file", "test_files", "tests", "command", "inline", "content"}

// provisionerLabel says what a provisioner works on, for the board and the
// trace: its script or source file relative to the workspace, else its
// first command; "" when none of labelKeywords is set. Secrets show as
// "(sensitive)".
func provisionerLabel(o *value.Object, workspace string) string {
	for _, kw := range labelKeywords {
		v, ok := o.Fields.Get(kw)
		if !ok {
			continue
		}
		if l, ok := v.(value.List); ok && len(l) > 0 {
			v = l[0]
		}
		s, ok := v.(value.String)
		if !ok {
			continue
		}
		if s.Sensitive {
			return "(sensitive)"
		}
		text := strings.TrimSpace(strings.SplitN(s.S, "\n", 2)[0])
		if workspace != "" && filepath.IsAbs(text) {
			if rel, err := filepath.Rel(workspace, text); err == nil && !strings.HasPrefix(rel, "..") {
				text = rel
			}
		}
		if r := []rune(text); len(r) > 40 {
			text = string(r[:39]) + "…"
		}
		return text
	}
	return ""
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ProvisionerCount is the number of provisioners this build runs.
func (j *Job) ProvisionerCount() int { return len(j.provisioners) }
