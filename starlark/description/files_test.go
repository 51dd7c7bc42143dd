package description

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

func planOf(t *testing.T, d *Description) *engine.Plan {
	t.Helper()
	return engine.MakePlan(d.Graph, testRegistry(), d.Root)
}

func TestReadFileIsAnInputOfTheBuildThatUsesIt(t *testing.T) {
	files := map[string]string{
		"images.star": `
load("//lib/user.star", "user_data")
text = read_file("//cloud-init.yaml")
if not text.startswith("#cloud-config") or len(text) != 29:
    fail("read %r" % text)
box(name = "web", region = "x", image = read_file("files/image.txt").strip().upper(), tags = {"user_data": text, "lib": user_data})
`,
		"cloud-init.yaml": "#cloud-config\npackages: [jq]\n",
		"files/image.txt": " ami-1 \n",
		"lib/user.star":   `user_data = read_file("user.txt")`,
		"lib/user.txt":    "from the module's directory",
	}
	root := testkit.Workspace(t, files)
	load := func() *engine.PlannedBuild {
		d, err := Load(Options{File: filepath.Join(root, "images.star"), Registry: testRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		return planOf(t, d).Builds[0]
	}
	b := load()
	var got []string
	for _, s := range b.Settings {
		got = append(got, s.Keyword+" = "+s.Value)
	}
	want := []string{
		`region = "x"`,
		`image = "AMI-1"`,
		`tags = {"user_data": read_file("//cloud-init.yaml") (sha256:` + digest(files["cloud-init.yaml"]) + `), "lib": read_file("//lib/user.txt") (sha256:` + digest(files["lib/user.txt"]) + `)}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	fingerprint := func() string {
		d, err := Load(Options{File: filepath.Join(root, "images.star"), Registry: testRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		in, err := (&engine.Fingerprinter{Registry: testRegistry(), Workspace: d.Root}).Inputs(context.Background(), d.Graph.Nodes[0], nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return in.Fingerprint()
	}
	before := fingerprint()
	os.WriteFile(filepath.Join(root, "cloud-init.yaml"), []byte("#cloud-config\npackages: [yq]\n"), 0o644)
	if after := fingerprint(); after == before {
		t.Errorf("the fingerprint did not change when the file did")
	}
}

// TestTemplateFileIsAnInputOfTheBuildThatUsesIt changes a template and
// then a value given to it: each changes the fingerprint of the build that
// renders it, and neither changes the other build's.
func TestTemplateFileIsAnInputOfTheBuildThatUsesIt(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"images.star": `
host = var("host", default = "web-1")
box(name = "web", region = "x", tags = {"user_data": template_file("//user-data.pkrtpl.hcl", {"hostname": host})})
box(name = "db", region = "x")
`,
		"user-data.pkrtpl.hcl": "#cloud-config\nhostname: ${hostname}\n",
	})
	fingerprints := func(vars map[string]string) [2]string {
		t.Helper()
		d, err := Load(Options{File: filepath.Join(root, "images.star"), Registry: testRegistry(), Getenv: func(k string) (string, bool) {
			v, ok := vars[strings.TrimPrefix(k, "IMGBUILD_VAR_")]
			return v, ok && strings.HasPrefix(k, "IMGBUILD_VAR_")
		}})
		if err != nil {
			t.Fatal(err)
		}
		var out [2]string
		for i, name := range []string{"web", "db"} {
			n, _ := d.Graph.Node(name)
			in, err := (&engine.Fingerprinter{Registry: testRegistry(), Workspace: d.Root}).Inputs(context.Background(), n, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = in.Fingerprint()
		}
		return out
	}
	before := fingerprints(nil)
	os.WriteFile(filepath.Join(root, "user-data.pkrtpl.hcl"), []byte("#cloud-config\nhostname: ${hostname}\npackages: [jq]\n"), 0o644)
	edited := fingerprints(nil)
	if edited[0] == before[0] {
		t.Errorf("web's fingerprint did not change when its template did")
	}
	if edited[1] != before[1] {
		t.Errorf("db's fingerprint changed with a template it does not use")
	}
	if other := fingerprints(map[string]string{"host": "web-2"}); other[0] == edited[0] || other[1] != edited[1] {
		t.Errorf("a value given to the template: fingerprints %v, then %v; want web's alone to change", edited, other)
	}
}

func TestReadFileOutsideTheWorkspaceIsAnError(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{"ws/images.star": "", "secret.txt": "x"})
	cases := map[string]string{
		`read_file("//../secret.txt")`:         `images.star:1:14: read_file: "//../secret.txt" is outside the workspace ` + filepath.Join(root, "ws") + `; descriptions may only read files inside it`,
		`read_file("../secret.txt")`:           `read_file: "../secret.txt" is outside the workspace`,
		`read_file("/etc/hostname")`:           `read_file: "/etc/hostname" is outside the workspace`,
		`read_file("//nope.txt")`:              `read_file: "//nope.txt" does not exist (looked for ` + filepath.Join(root, "ws", "nope.txt") + `)`,
		`template_file("//../secret.txt", {})`: `template_file: "//../secret.txt" is outside the workspace`,
	}
	for src, want := range cases {
		os.WriteFile(filepath.Join(root, "ws", "imgbuild.mod"), nil, 0o644)
		os.WriteFile(filepath.Join(root, "ws", "images.star"), []byte("x = "+src+"\n"), 0o644)
		_, err := Load(Options{File: filepath.Join(root, "ws", "images.star"), Registry: testRegistry()})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error:\n%v\nwant it to contain:\n%s", src, err, want)
		}
	}
}

func TestTemplateFileRendersPackersTemplateSyntax(t *testing.T) {
	tpl := `#cloud-config
hostname: ${hostname}
%{ for u in users ~}
- ${upper(u.name)}: ${u.shell}
%{ endfor ~}
%{ if debug }debug: true%{ else }debug: false%{ endif }
image: ${image}
literal: $${not_a_var}
`
	d, err := load(t, map[string]string{
		"images.star": `
base = box(name = "base", region = "x")
text = template_file("//user-data.pkrtpl.hcl", {
    "hostname": "web-1",
    "users": [{"name": "ops", "shell": "/bin/bash"}, {"name": "ci", "shell": "/bin/sh"}],
    "debug": False,
    "image": base.image_id,
})
box(name = "web", region = "x", tags = {"user_data": text})
`,
		"user-data.pkrtpl.hcl": tpl,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	web, _ := d.Graph.Node("web")
	tags, _ := web.Settings.Get("tags")
	if deps := d.Graph.Deps(web); len(deps) != 1 || deps[0] != "base" {
		t.Errorf("an output given to the template is no edge: deps %v", deps)
	}
	want := `{"user_data": "#cloud-config\nhostname: web-1\n- OPS: /bin/bash\n- CI: /bin/sh\ndebug: false\nimage: " + base.image_id + "\nliteral: ${not_a_var}\n"}`
	if got := formatValue(tags); got != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}
}

func TestTemplateFileErrorsNameTheTemplatesPlace(t *testing.T) {
	cases := map[string]struct{ tpl, call, want string }{
		"unknown variable": {"a: ${a}\nb: ${hostnme}\n", `template_file("t.tpl", {"a": 1, "hostname": "x"})`,
			`template_file: //t.tpl:2:6: Unknown variable; There is no variable named "hostnme". Did you mean "hostname"? (vars has a, hostname)`},
		"syntax":   {"a: %{ if x }\n", `template_file("t.tpl", {"x": True})`, `template_file: //t.tpl:2:1: Unexpected end of template; The if directive at //t.tpl:1,4-13 is missing its corresponding endif directive.`},
		"not text": {"${list}", `template_file("t.tpl", {"list": [1]})`, `template_file: //t.tpl renders to tuple, not text`},
		"bad key":  {"x", `template_file("t.tpl", {"a-b": 1})`, `template_file: for parameter vars: key "a-b" is not a name a template can use`},
	}
	for name, c := range cases {
		_, err := load(t, map[string]string{"images.star": "x = " + c.call + "\n", "t.tpl": c.tpl}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error:\n%v\nwant it to contain:\n%s", name, err, c.want)
		}
	}
}

func TestTemplateFileWithASecretIsSensitive(t *testing.T) {
	d, err := load(t, map[string]string{
		"images.star": `
token = var("token", default = "hunter2-Zq", sensitive = True)
box(name = "web", region = "x", tags = {"user_data": template_file("t.tpl", {"token": token})})
`,
		"t.tpl": "token: ${token}\n",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan := planOf(t, d)
	if got := plan.Builds[0].Settings[1].Value; got != `{"user_data": (sensitive)}` {
		t.Errorf("plan shows %s", got)
	}
}

func digest(s string) string {
	return formatValue(value.String{S: s, Origin: "x"})[len("x (sha256:") : len("x (sha256:")+12]
}

func formatValue(v value.Value) string { return value.Format(v) }
