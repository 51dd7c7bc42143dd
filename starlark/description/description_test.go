package description

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/builtins"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

// boxConfig is a fixture builder's declaration: enough keywords to exercise
// every kind of check.
type boxConfig struct {
	Region   string            `kw:"region,required" doc:"Where."`
	Size     int               `kw:"size" default:"1" doc:"How big."`
	Image    string            `kw:"image" doc:"Source image."`
	Password string            `kw:"password,sensitive" doc:"A secret."`
	Script   string            `kw:"script" path:"file" doc:"A script."`
	Tags     map[string]string `kw:"tags" doc:"Tags."`
	Mode     string            `kw:"mode" enum:"fast|slow" default:"fast" doc:"Mode."`
}

type stepConfig struct {
	Inline []string          `kw:"inline" doc:"Commands."`
	Source string            `kw:"source" path:"any" doc:"A file."`
	Env    map[string]string `kw:"env" doc:"Environment."`
}

type postConfig struct {
	Output string `kw:"output" default:"manifest.json" doc:"Where."`
}

func testRegistry() *engine.Registry {
	reg := engine.NewRegistry()
	reg.AddBuilder(&engine.BuilderDef{
		Schema:  schema.Of("box", "A fixture builder.", &boxConfig{}),
		Outputs: []engine.Output{{Name: "image_id", Doc: "The image."}},
		Build: func(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
			return &engine.Artifact{ID: "img-" + job.Name}, nil
		},
	})
	reg.AddProvisioner(&engine.ProvisionerDef{Schema: schema.Of("step", "A fixture provisioner.", &stepConfig{})})
	reg.AddPostProcessor(&engine.PostProcessorDef{Schema: schema.Of("post_step", "A fixture post-processor.", &postConfig{}),
		Outputs: []engine.Output{{Name: "report", Doc: "What it wrote."}}})
	return reg
}

func load(t *testing.T, files map[string]string, vars map[string]builtins.VarValue) (*Description, error) {
	t.Helper()
	root := testkit.Workspace(t, files)
	return Load(Options{File: filepath.Join(root, "images.star"), Registry: testRegistry(), Vars: vars})
}

func TestBadInputMessages(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		vars  map[string]builtins.VarValue
		want  string
	}{
		{
			name:  "unknown keyword suggests the nearest",
			files: map[string]string{"images.star": `box(name = "a", regon = "x")`},
			want:  `images.star:1:17: box: unexpected keyword argument "regon" (did you mean "region"?)`,
		},
		{
			name:  "wrong type",
			files: map[string]string{"images.star": `box(name = "a", region = "x", size = "big")`},
			want:  `images.star:1:31: box: for parameter size: got string, want int`,
		},
		{
			name:  "wrong element type",
			files: map[string]string{"images.star": `box(name = "a", region = "x", tags = {"k": 1})`},
			want:  `images.star:1:31: box: for parameter tags: key "k": got int, want string`,
		},
		{
			name:  "value outside enum",
			files: map[string]string{"images.star": `box(name = "a", region = "x", mode = "medium")`},
			want:  `images.star:1:31: box: for parameter mode: "medium" is not one of "fast", "slow"`,
		},
		{
			name:  "missing required keyword",
			files: map[string]string{"images.star": `box(name = "a")`},
			want:  `images.star:1:4: box: missing required keyword argument "region"`,
		},
		{
			name:  "missing name",
			files: map[string]string{"images.star": `box(region = "x")`},
			want:  `images.star:1:4: box: missing required keyword argument "name": every build needs a unique name`,
		},
		{
			name:  "positional argument",
			files: map[string]string{"images.star": `box("a", region = "x")`},
			want:  `images.star:1:4: box: got 1 positional argument, but box takes keywords only, like box(name = "web", ...)`,
		},
		{
			name:  "positional argument to a provisioner",
			files: map[string]string{"images.star": `step("echo hi")`},
			want:  `images.star:1:5: step: got 1 positional argument, but step takes keywords only, like step(inline = ...)`,
		},
		{
			name:  "two builds with one name",
			files: map[string]string{"images.star": "box(name = \"a\", region = \"x\")\nbox(name = \"a\", region = \"y\")\n"},
			want:  `images.star:2:5: two builds are named "a": images.star:1:4 and images.star:2:4; build names must be unique`,
		},
		{
			name:  "cycle names every member",
			files: map[string]string{"images.star": "box(name = \"a\", region = \"x\", depends_on = [\"c\"])\nbox(name = \"b\", region = \"x\", depends_on = [\"a\"])\nbox(name = \"c\", region = \"x\", depends_on = [\"b\"])\n"},
			want:  "dependency cycle (each build needs the next): a → c → b → a\n  images.star:1:4: build \"a\"\n  images.star:3:4: build \"c\"\n  images.star:2:4: build \"b\"",
		},
		{
			name:  "output the driver does not have",
			files: map[string]string{"images.star": "base = box(name = \"base\", region = \"x\")\nbox(name = \"web\", region = \"x\", image = base.imge_id)\n"},
			want:  `images.star:2:45: box build "base" has no output "imge_id" (did you mean "image_id"?); its outputs are files, id, image_id, name`,
		},
		{
			name:  "output of a build through formatting that does not exist",
			files: map[string]string{"images.star": "box(name = \"base\", region = \"x\")\nbox(name = \"web\", region = \"x\", image = \"${base.nope}\")\n"},
			want:  `images.star:2:4: build "web" refers to base.nope, but box build "base" has no output "nope" (it has id, files, name, image_id)`,
		},
		{
			name:  "depends_on a build that does not exist",
			files: map[string]string{"images.star": "box(name = \"base\", region = \"x\")\nbox(name = \"web\", region = \"x\", depends_on = [\"bse\"])\n"},
			want:  `images.star:2:4: build "web" depends on "bse", which is not defined (did you mean "base"?)`,
		},
		{
			name:  "a build passed as a setting",
			files: map[string]string{"images.star": "base = box(name = \"base\", region = \"x\")\nbox(name = \"web\", region = \"x\", image = base)\n"},
			want:  `images.star:2:33: box: for parameter image: got the build "base" itself; pass one of its outputs (base.files) or list it in depends_on`,
		},
		{
			name:  "file that does not exist",
			files: map[string]string{"images.star": `step(source = "files/nginx.conf")`},
			want:  `images.star:1:6: step: for parameter source: "files/nginx.conf" does not exist (looked for `,
		},
		{
			name:  "file outside the workspace",
			files: map[string]string{"images.star": `step(source = "../outside.txt")`},
			want:  `images.star:1:6: step: for parameter source: "../outside.txt" is outside the workspace`,
		},
		{
			name:  "absolute file outside the workspace",
			files: map[string]string{"images.star": `step(source = "/etc/passwd")`},
			want:  `images.star:1:6: step: for parameter source: "/etc/passwd" is outside the workspace`,
		},
		{
			name:  "script that is a directory",
			files: map[string]string{"images.star": `box(name = "a", region = "x", script = "dir")`, "dir/x": ""},
			want:  `images.star:1:31: box: for parameter script: "dir" is a directory, want a file`,
		},
		{
			name:  "provisioner list holding a string",
			files: map[string]string{"images.star": `box(name = "a", region = "x", provisioners = ["echo hi"])`},
			want:  `images.star:1:31: box: for parameter provisioners: element 0: got string, want a provisioner such as shell(...) or file(...)`,
		},
		{
			name:  "post-processor in provisioners",
			files: map[string]string{"images.star": `box(name = "a", region = "x", provisioners = [post_step()])`},
			want:  `images.star:1:31: box: for parameter provisioners: element 0: got post-processor, want a provisioner such as shell(...) or file(...)`,
		},
		{
			name:  "missing module",
			files: map[string]string{"images.star": `load("//lib/nope.star", "x")`},
			want:  `images.star:1:1: cannot load //lib/nope.star: module //lib/nope.star not found`,
		},
		{
			name:  "load outside the workspace",
			files: map[string]string{"images.star": `load("//../x.star", "x")`},
			want:  `images.star:1:1: cannot load //../x.star: //../x.star leads outside the workspace`,
		},
		{
			name:  "load by absolute path",
			files: map[string]string{"images.star": `load("/tmp/x.star", "x")`},
			want:  `images.star:1:1: cannot load /tmp/x.star: absolute paths are not allowed`,
		},
		{
			name:  "syntax error",
			files: map[string]string{"images.star": "box(name = \"a\",\n    region = \"x\"\n"},
			want:  `images.star:3:1: syntax error: got end of file, want ')'`,
		},
		{
			name:  "--var for an undeclared variable",
			files: map[string]string{"images.star": `v = var("version", default = "dev")`},
			vars:  map[string]builtins.VarValue{"verison": {Raw: "1", Source: "--var"}},
			want:  `--var: variable "verison" is not declared in the description (did you mean "version"?); declared: version`,
		},
		{
			name:  "required variable unset",
			files: map[string]string{"images.star": `v = var("version")`},
			want:  `images.star:1:8: var: variable "version" is required but not set: pass --var version=..., put it in a --var-file, set IMGBUILD_VAR_version, or give it a default`,
		},
		{
			name:  "variable of the wrong type",
			files: map[string]string{"images.star": `n = var("count", default = 1)`},
			vars:  map[string]builtins.VarValue{"count": {Raw: "many", Source: "--var"}},
			want:  `images.star:1:8: var: --var: variable "count": "many" is not an int (the default is an int)`,
		},
		{
			name:  "variable failing validation",
			files: map[string]string{"images.star": `v = var("version", default = "dev", validation = lambda v: v.startswith("v") or "must start with v")`},
			want:  `images.star:1:8: var: variable "version": value "dev" (from its default) is not valid: must start with v`,
		},
		{
			name:  "sensitive variable failing validation does not show its value",
			files: map[string]string{"images.star": `v = var("token", default = "hunter2", sensitive = True, validation = lambda v: len(v) > 10)`},
			want:  `images.star:1:8: var: variable "token": value (sensitive) (from its default) is not valid`,
		},
		{
			name: "error inside a loaded module shows the backtrace",
			files: map[string]string{
				"images.star":      "load(\"//teams/setup.star\", \"setup\")\nbox(name = \"a\", region = \"x\", provisioners = setup())\n",
				"teams/setup.star": "def setup():\n    return [step(inline = [\"x\"], envv = {})]\n",
			},
			want: "teams/setup.star:2:34: step: unexpected keyword argument \"envv\" (did you mean \"env\"?)\nbacktrace (most recent call last):\n  images.star:2:51: in <toplevel>\n  teams/setup.star:2:17: in setup",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.files, c.vars)
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, c.want)
			}
		})
	}
}

func TestVarFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "vars.json")
	os.WriteFile(bad, []byte("{\n  \"version\": \"1\",\n  \"region\": \n}"), 0o644)
	_, err := builtins.ReadVarFile(bad)
	want := "--var-file " + bad + " does not parse as JSON: line 4, column 1: invalid character '}' looking for beginning of value"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
	badStar := filepath.Join(dir, "vars.star")
	os.WriteFile(badStar, []byte("version = \"1\"\nprint(version)\n"), 0o644)
	_, err = builtins.ReadVarFile(badStar)
	if err == nil || !strings.Contains(err.Error(), "vars.star:2:1: only plain assignments (name = value) are allowed") {
		t.Errorf("error = %v", err)
	}
	notObject := filepath.Join(dir, "list.json")
	os.WriteFile(notObject, []byte(`["a"]`), 0o644)
	_, err = builtins.ReadVarFile(notObject)
	if err == nil || !strings.Contains(err.Error(), "the file must hold one JSON object of variable names to values, not a array") {
		t.Errorf("error = %v", err)
	}
}

func TestVariablesFromEverySource(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "vars.json")
	os.WriteFile(jsonFile, []byte(`{"count": 3, "regions": ["a", "b"], "debug": true}`), 0o644)
	starFile := filepath.Join(dir, "vars.star")
	os.WriteFile(starFile, []byte("name = \"web\"\nsizes = {\"small\": 1}\n"), 0o644)
	vars := map[string]builtins.VarValue{}
	for _, f := range []string{jsonFile, starFile} {
		got, err := builtins.ReadVarFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range got {
			vars[k] = v
		}
	}
	vars["version"] = builtins.VarValue{Raw: "1.2", Source: "--var"}
	vars["replicas"] = builtins.VarValue{Raw: "5", Source: "--var"}
	root := testkit.Workspace(t, map[string]string{"images.star": `
version = var("version", default = "dev")
replicas = var("replicas", default = 1)
count = var("count", default = 1)
regions = var("regions", default = [])
debug = var("debug", default = False)
name = var("name")
sizes = var("sizes", default = {})
from_env = var("from_env", default = "unset")
got = [version, replicas, count, regions, debug, name, sizes, from_env]
want = ["1.2", 5, 3, ["a", "b"], True, "web", {"small": 1}, "env!"]
if got != want:
    fail("got %r, want %r" % (got, want))
box(name = name, region = "x")
`})
	env := func(k string) (string, bool) {
		if k == "IMGBUILD_VAR_from_env" {
			return "env!", true
		}
		return "", false
	}
	d, err := Load(Options{File: filepath.Join(root, "images.star"), Registry: testRegistry(), Vars: vars, Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Graph.Node("web"); !ok {
		t.Errorf("build web not recorded: %v", d.Graph.Names())
	}
}

func TestRefsMakeEdgesWithTheOutputTheyConsume(t *testing.T) {
	d, err := load(t, map[string]string{"images.star": `
base = box(name = "base", region = "x")
mid = box(name = "mid", region = "x", image = "prefix-" + base.image_id)
box(name = "web", region = "x", image = mid.image_id + "-suffix", tags = {"from": "%s" % base.id},
    provisioners = [step(env = {"BASE": base.image_id})], depends_on = [mid])
`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	web, _ := d.Graph.Node("web")
	var got []string
	for _, e := range d.Graph.Edges(web) {
		got = append(got, e.From+": "+e.Via)
	}
	want := []string{
		"mid: image ← mid.image_id",
		"base: tags.from ← base.id",
		"base: provisioners[0].env.BASE ← base.image_id",
		"mid: depends_on",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("edges:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	waves := d.Graph.Waves()
	if len(waves) != 3 || waves[0][0].Name != "base" || waves[2][0].Name != "web" {
		t.Errorf("waves = %v", waves)
	}
}

func TestSecretsStaySecret(t *testing.T) {
	d, err := load(t, map[string]string{"images.star": `
token = var("token", default = "hunter2-secret", sensitive = True)
if type(str(token)) != "sensitive string":
    fail("str() of a secret is a " + type(str(token)))
box(name = "a", region = "x", tags = {"auth": "Bearer " + token})
`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Secrets) != 1 || d.Secrets[0] != "hunter2-secret" {
		t.Errorf("secrets = %v", d.Secrets)
	}
	var b strings.Builder
	engine.MakePlan(d.Graph, testRegistry(), d.Root).WriteText(&b)
	if strings.Contains(b.String(), "hunter2") {
		t.Errorf("plan shows the secret:\n%s", b.String())
	}
	if !strings.Contains(b.String(), `tags   = {"auth": (sensitive)}`) {
		t.Errorf("plan does not mark the secret:\n%s", b.String())
	}
}

func TestPathCheckCanDependOnAnotherKeyword(t *testing.T) {
	reg := testRegistry()
	reg.AddProvisioner(&engine.ProvisionerDef{Schema: schema.Of("fetch", "", &struct {
		Source    string `kw:"source" path:"any" pathunless:"direction=download" doc:"."`
		Direction string `kw:"direction" default:"upload" doc:"."`
	}{})})
	root := testkit.Workspace(t, map[string]string{"images.star": `
fetch(source = "/var/log/remote.log", direction = "download")
fetch(source = "missing.txt")
`})
	_, err := Load(Options{File: filepath.Join(root, "images.star"), Registry: reg})
	if err == nil || !strings.Contains(err.Error(), `images.star:3:7: fetch: for parameter source: "missing.txt" does not exist`) {
		t.Errorf("error = %v (the download's source must not be checked, the upload's must)", err)
	}
}

// imageRef is a config field that takes an image id or a find_image(...)
// lookup, the way amazon_ebs's source_ami takes aws_ami(...).
type imageRef struct {
	ID     string
	Lookup *value.Object
}

func (r *imageRef) DecodeValue(v value.Value) error {
	switch v := v.(type) {
	case value.String:
		r.ID = v.S
	case *value.Object:
		if v.Kind != "find_image" {
			return fmt.Errorf("got %s, want an image id or find_image(...)", v.Type())
		}
		r.Lookup = v
	default:
		return fmt.Errorf("got %s, want an image id or find_image(...)", v.Type())
	}
	return nil
}

func TestLookupsAreValuesResolvedByPlanRefresh(t *testing.T) {
	reg := engine.NewRegistry()
	type findConfig struct {
		Name string `kw:"name,required" doc:"Pattern."`
	}
	reg.AddLookup(&engine.LookupDef{
		Schema: schema.Of("find_image", "Finds an image.", &findConfig{}),
		Resolve: func(ctx context.Context, cfg any, build *value.Map) (string, error) {
			zone := "?"
			if z, ok := build.Get("zone"); ok {
				zone = z.(value.String).S
			}
			return "img-for-" + cfg.(*findConfig).Name + "-in-" + zone, nil
		},
	})
	reg.AddBuilder(&engine.BuilderDef{
		Schema: schema.Of("vm", "", &struct {
			Source imageRef `kw:"source,required" doc:"Image."`
			Zone   string   `kw:"zone" doc:"Where."`
		}{}),
		Build: func(context.Context, *engine.Job) (*engine.Artifact, error) { return &engine.Artifact{}, nil },
	})
	root := testkit.Workspace(t, map[string]string{"images.star": `
vm(name = "a", source = find_image(name = "debian-*"), zone = "z1")
vm(name = "b", source = "img-fixed")
`})
	d, err := Load(Options{File: filepath.Join(root, "images.star"), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	plan := engine.MakePlan(d.Graph, reg, d.Root)
	if err := plan.Refresh(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	plan.WriteText(&b)
	if !strings.Contains(b.String(), `source = find_image(name = "debian-*") → img-for-debian-*-in-z1`) {
		t.Errorf("plan:\n%s", b.String())
	}
	root = testkit.Workspace(t, map[string]string{"images.star": `vm(name = "a", source = find_image(nam = "x"))`})
	_, err = Load(Options{File: filepath.Join(root, "images.star"), Registry: reg})
	if err == nil || !strings.Contains(err.Error(), `find_image: unexpected keyword argument "nam" (did you mean "name"?)`) {
		t.Errorf("error = %v", err)
	}
	root = testkit.Workspace(t, map[string]string{"images.star": `vm(name = "a", source = 42)`})
	_, err = Load(Options{File: filepath.Join(root, "images.star"), Registry: reg})
	if err == nil || !strings.Contains(err.Error(), `vm: for parameter source: got int, want an image id or find_image(...)`) {
		t.Errorf("error = %v", err)
	}
}

func TestMachineScopedPathsMayLieOutsideTheWorkspace(t *testing.T) {
	reg := testRegistry()
	reg.AddProvisioner(&engine.ProvisionerDef{Schema: schema.Of("login", "", &struct {
		Key  string `kw:"key" path:"file" pathscope:"machine" doc:"."`
		Conf string `kw:"conf" path:"file" doc:"."`
	}{})})
	outside := filepath.Join(t.TempDir(), "id_ed25519")
	os.WriteFile(outside, []byte("key"), 0o600)
	root := testkit.Workspace(t, map[string]string{"images.star": `
login(key = "` + outside + `")
login(key = "` + outside + `.missing")
`})
	_, err := Load(Options{File: filepath.Join(root, "images.star"), Registry: reg})
	if err == nil || !strings.Contains(err.Error(), `images.star:3:7: login: for parameter key: "`+outside+`.missing" does not exist`) {
		t.Errorf("error = %v (a key outside the workspace is fine, a missing one is not)", err)
	}
	root = testkit.Workspace(t, map[string]string{"images.star": `login(conf = "` + outside + `")`})
	_, err = Load(Options{File: filepath.Join(root, "images.star"), Registry: reg})
	if err == nil || !strings.Contains(err.Error(), "is outside the workspace") {
		t.Errorf("error = %v (workspace-scoped paths stay inside)", err)
	}
}

// TestEveryMistakeIsReportedAtItsKeyword: three mistakes in three calls give
// three errors, each at the line and column of the offending keyword, not
// of the call's opening bracket.
func TestEveryMistakeIsReportedAtItsKeyword(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{"images.star": `
box(
    name = "a",
    provisoners = [],
)
step(
    env = 3,
)
box(name = "b", region = "r", provisioners = [step(src = "x")])
`})
	_, err := Load(Options{File: filepath.Join(root, "images.star"), Registry: testRegistry()})
	var list builtins.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("err = %v, want a list", err)
	}
	want := []string{
		`images.star:4:5: box: unexpected keyword argument "provisoners" (did you mean "provisioners"?)`,
		`images.star:7:5: step: for parameter env:`,
		`images.star:9:52: step: unexpected keyword argument "src"`,
	}
	if len(list) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(list[i].Error(), w) {
			t.Errorf("error %d = %q, want it to start %q", i+1, list[i], w)
		}
	}
}

func TestAPostProcessorsOutputIsAnOutputOfItsBuild(t *testing.T) {
	d, err := load(t, map[string]string{"images.star": "base = box(name = \"base\", region = \"x\", post = [post_step()])\nbox(name = \"web\", region = \"x\", image = base.report)\n"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	web, _ := d.Graph.Node("web")
	if edges := d.Graph.Edges(web); len(edges) != 1 || edges[0].From != "base" || !strings.HasSuffix(edges[0].Via, "base.report") {
		t.Errorf("edges %+v, want one from base.report", edges)
	}
	_, err = load(t, map[string]string{"images.star": "base = box(name = \"base\", region = \"x\", post = [post_step(), post_step(output = \"b.json\")])\nbox(name = \"web\", region = \"x\", image = base.report)\n"}, nil)
	want := `images.star:2:45: build "base" has output "report" 2 times (post_step at images.star:1:58; post_step at images.star:1:71): refer to one made once, such as an output of the builder`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %q", err, want)
	}
}
