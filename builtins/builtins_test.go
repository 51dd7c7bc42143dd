package builtins_test

import (
	"sort"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/imgbuild/imgbuild/builtins"
	"github.com/imgbuild/imgbuild/drivers/all"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/value"
)

// These tests evaluate Starlark with the builtins of every real driver,
// as a description's evaluation does, without the host's module loading.

// eval runs src as images.star with the builtins, then the whole-file
// checks; it returns the recorder and the first error.
func eval(t *testing.T, src string, opts builtins.Options) (*builtins.Recorder, error) {
	t.Helper()
	if opts.Registry == nil {
		opts.Registry = engine.NewRegistry()
		all.Register(opts.Registry)
	}
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	r := builtins.New(opts)
	thread := &starlark.Thread{Name: "test"}
	_, err := starlark.ExecFileOptions(&syntax.FileOptions{}, thread, "images.star", src, r.Predeclared())
	if err == nil {
		err = r.Finish()
	}
	return r, err
}

func message(err error) string {
	if err == nil {
		return "<nil>"
	}
	if ee, ok := err.(*starlark.EvalError); ok {
		return ee.Msg
	}
	return err.Error()
}

func TestABuilderCallRecordsANodeWithItsSettingsAndWhereItWasCalled(t *testing.T) {
	r, err := eval(t, "\nlocal(name = \"web\", files = {\"etc/motd\": \"hello\"}, force = True)\n", builtins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, ok := r.Graph.Node("web")
	if !ok {
		t.Fatalf("no node web; nodes %v", r.Graph.Names())
	}
	if n.Driver != "local" || n.Pos != "images.star:2:6" {
		t.Errorf("driver %q at %q, want local at images.star:2:6", n.Driver, n.Pos)
	}
	if v, ok := n.Settings.Get("force"); !ok || value.Format(v) != "True" {
		t.Errorf("force = %v, %v", v, ok)
	}
	if v, ok := n.Settings.Get("files"); !ok || !strings.Contains(value.Format(v), "etc/motd") {
		t.Errorf("files = %v, %v", v, ok)
	}
}

func TestPassingAnOutputToAnotherBuildMakesItDependOnIt(t *testing.T) {
	r, err := eval(t, `
base = local(name = "base")
local(name = "app", files = {"base": base.directory})
local(name = "last", depends_on = [base, "app"])
`, builtins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for build, want := range map[string]string{"base": "", "app": "base", "last": "app base"} {
		n, _ := r.Graph.Node(build)
		deps := r.Graph.Deps(n)
		sort.Strings(deps)
		if got := strings.Join(deps, " "); got != want {
			t.Errorf("%s depends on %q, want %q", build, got, want)
		}
	}
}

// Every bad call names the builtin, the parameter and what to do. (Without
// Options.Syntax, the builtins place their errors at the call.)
func TestBadCallsSayWhatIsWrong(t *testing.T) {
	const login = `ssh_host = "h", ssh_username = "u", ssh_password = "p", ssh_insecure_ignore_host_key = True`
	for _, tc := range []struct{ src, want string }{
		{`null(name = "a", ssh_hots = "x")`, `images.star:1:5: null: unexpected keyword argument "ssh_hots" (did you mean "ssh_host"?)`},
		{`null(name = "a", ssh_host = 3)`, `images.star:1:5: null: for parameter ssh_host: got int, want string`},
		{`null("a")`, `null: got 1 positional argument, but null takes keywords only, like null(name = "web", ...)`},
		{`null(name = "a", ` + login + `); null(name = "a", ` + login + `)`, `images.star:1:116: two builds are named "a": images.star:1:5 and images.star:1:116; build names must be unique`},
		{`a = local(name = "a"); a.nope`, `local build "a" has no output "nope" (did you mean "name"?); its outputs are directory, files, id, name`},
		{`local(name = "b", depends_on = ["nope"])`, `images.star:1:6: build "b" depends on "nope", which is not defined`},
		{`shell(inline = ["x"], foo = 1)`, `images.star:1:6: shell: unexpected keyword argument "foo"`},
		{`local(name = "a b")`, `images.star:1:6: local: for parameter name: "a b" is not a valid build name (letters, digits, '.', '_' and '-', starting with a letter or digit)`},
		{`var("region")`, `var: variable "region" is required but not set: pass --var region=..., put it in a --var-file, set IMGBUILD_VAR_region, or give it a default`},
		{`var("token", default = 1, sensitive = True)`, `var: sensitive variable "token" must be a string, not int (its default)`},
	} {
		_, err := eval(t, tc.src, builtins.Options{})
		if got := message(err); got != tc.want {
			t.Errorf("%s\n got  %s\n want %s", tc.src, got, tc.want)
		}
	}
}

func TestAVariableComesFromTheCommandLineThenTheEnvironmentThenItsDefault(t *testing.T) {
	src := `
region = var("region", default = "eu-west-1")
size = var("size", default = 2)
zone = var("zone", default = "a")
`
	env := map[string]string{"IMGBUILD_VAR_size": "8", "IMGBUILD_VAR_region": "ignored: --var wins"}
	r, err := eval(t, src, builtins.Options{
		Vars:   map[string]builtins.VarValue{"region": {Raw: "us-east-1", Source: "--var"}},
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range r.Variables() {
		got = append(got, v.Name+"="+v.Value+" from "+v.Source)
	}
	want := []string{"region=\"us-east-1\" from --var", "size=8 from $IMGBUILD_VAR_size", "zone=\"a\" from its default"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("variables:\n got  %v\n want %v", got, want)
	}
}

func TestASensitiveVariableIsHiddenInWhatTheEvaluationShows(t *testing.T) {
	r, err := eval(t, `token = var("token", default = "", sensitive = True)`, builtins.Options{
		Vars: map[string]builtins.VarValue{"token": {Raw: "s3cr3t-value", Source: "--var"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Secrets(); len(got) != 1 || got[0] != "s3cr3t-value" {
		t.Errorf("secrets %q", got)
	}
	if got := r.Redact("login with s3cr3t-value now"); strings.Contains(got, "s3cr3t-value") {
		t.Errorf("redacted text still shows the secret: %q", got)
	}
	if v := r.Variables(); len(v) != 1 || v[0].Value != "(sensitive)" || !v[0].Sensitive {
		t.Errorf("the plan's variable: %+v", v)
	}
}

func TestAVariableGivenButNotDeclaredIsAnErrorWithTheNearestName(t *testing.T) {
	_, err := eval(t, `var("region", default = "eu-west-1")`, builtins.Options{
		Vars: map[string]builtins.VarValue{"regoin": {Raw: "us-east-1", Source: "--var"}},
	})
	want := `--var: variable "regoin" is not declared in the description (did you mean "region"?); declared: region`
	if got := message(err); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// From a var-file it is only a warning, as in Packer.
	var warned []string
	_, err = eval(t, `var("region", default = "eu-west-1")`, builtins.Options{
		Vars: map[string]builtins.VarValue{"regoin": {Raw: "us-east-1", Source: "prod.json", Pos: "prod.json:2:3"}},
		Warn: func(m string) { warned = append(warned, m) },
	})
	if err != nil || len(warned) != 1 || !strings.HasPrefix(warned[0], `prod.json:2:3: variable "regoin" is not declared`) {
		t.Errorf("err %v, warnings %q", err, warned)
	}
}

func TestDocsComeFromTheSchemaAndAnUnknownNameGetsASuggestion(t *testing.T) {
	reg := engine.NewRegistry()
	all.Register(reg)
	doc, err := builtins.Docs(reg, "shell")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"shell(", "inline", "max_retries"} {
		if !strings.Contains(doc, want) {
			t.Errorf("shell's reference lacks %q:\n%s", want, doc)
		}
	}
	doc, err = builtins.Docs(reg, "local")
	if err != nil || !strings.Contains(doc, "depends_on (list)") || !strings.Contains(doc, "Outputs (use as local_build.<output>") {
		t.Errorf("a builder's reference lacks the keywords every builder takes or its outputs (%v):\n%s", err, doc)
	}
	if _, err := builtins.Docs(reg, "shel"); message(err) != `no builtin named "shel" (did you mean "shell"?); run imgbuild docs to list them` {
		t.Errorf("got %v", err)
	}
	index := builtins.Index(reg)
	for _, name := range []string{"amazon_ebs", "vsphere_iso", "shell", "manifest", "aws_ami", "var"} {
		if !strings.Contains(index, name) {
			t.Errorf("the index lacks %s", name)
		}
	}
}
