package description

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/builtins"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// readVarFiles reads var-files written into dir, later ones winning.
func readVarFiles(t *testing.T, dir string, files map[string]string, order ...string) map[string]builtins.VarValue {
	t.Helper()
	vars := map[string]builtins.VarValue{}
	for _, name := range order {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := builtins.ReadVarFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range got {
			vars[k] = v
		}
	}
	return vars
}

func TestPackerVarFileStringsConvertToTheDeclaredType(t *testing.T) {
	dir := t.TempDir()
	vars := readVarFiles(t, dir, map[string]string{
		"prod.pkrvars.hcl": `
debug     = "false"
cpus      = "2"
ratio     = "0.5"
port      = 6443
regions   = ["eu-west-1", "us-east-1"]
sizes     = { small = "1", large = 8 }
name      = 42
untyped   = "false"
encrypted = "true"
`,
		"ci.json": `{"api_port": "6443", "enabled": "true", "disk_gb": 20, "label": true}`,
	}, "prod.pkrvars.hcl", "ci.json")
	d, err := Load(Options{File: filepath.Join(testkit.Workspace(t, map[string]string{"images.star": `
debug = var("debug", type = "bool")
cpus = var("cpus", type = "number", default = 1)
ratio = var("ratio", type = "float")
port = var("port", type = "string")
regions = var("regions", type = "list(string)")
sizes = var("sizes", type = "dict(int)")
name = var("name", default = "web")
untyped = var("untyped")
encrypted = var("encrypted", default = False)
api_port = var("api_port", default = 443)
enabled = var("enabled", type = "bool", default = False)
disk_gb = var("disk_gb", type = "string")
label = var("label", type = "string")
two = var("two", type = "number", default = "2")
got = [debug, cpus, ratio, port, regions, sizes, name, untyped, encrypted, api_port, enabled, disk_gb, label, two]
want = [False, 2, 0.5, "6443", ["eu-west-1", "us-east-1"], {"small": 1, "large": 8}, "42", "false", True, 6443, True, "20", "true", 2]
if got != want:
    fail("got %r, want %r" % (got, want))
box(name = "web", region = "x")
`}), "images.star"), Registry: testRegistry(), Vars: vars})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Variables) != 14 {
		t.Errorf("got %d variables, want 14", len(d.Variables))
	}
	if v := d.Variables[0]; v.Source != "prod.pkrvars.hcl" {
		t.Errorf("debug's source = %q, want prod.pkrvars.hcl", v.Source)
	}
}

func TestVarFileValueThatCannotBeConvertedIsAnErrorAtItsLine(t *testing.T) {
	cases := []struct {
		name, file, src, decl, want string
	}{
		{
			name: "hcl string for an int",
			file: "prod.pkrvars.hcl", src: "region = \"eu-west-1\"\ncpus   = \"two\"\n",
			decl: `cpus = var("cpus", type = "int")`,
			want: `var: prod.pkrvars.hcl:2:1: variable "cpus": "two" is not an int (the variable is declared int)`,
		},
		{
			name: "json string for a bool taken from the default",
			file: "ci.json", src: "{\n  \"region\": \"x\",\n  \"debug\": \"yes\"\n}\n",
			decl: `debug = var("debug", default = False)`,
			want: `var: ci.json:3:3: variable "debug": "yes" is not a bool (the default is a bool): write true or false`,
		},
		{
			name: "hcl list for a string",
			file: "prod.pkrvars.hcl", src: "region = [\"a\"]\n",
			decl: `region = var("region", type = "string")`,
			want: `var: prod.pkrvars.hcl:1:1: variable "region": a list cannot be converted to string (the variable is declared string)`,
		},
		{
			name: "element of a typed list",
			file: "prod.pkrvars.hcl", src: "ports = [22, \"http\"]\n",
			decl: `ports = var("ports", type = "list(int)")`,
			want: `var: prod.pkrvars.hcl:1:1: variable "ports": element 1: "http" is not an int (the variable is declared list(int))`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := testkit.Workspace(t, map[string]string{"images.star": c.decl + "\n", c.file: c.src})
			vars, err := builtins.ReadVarFile(filepath.Join(root, c.file))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range vars { // as the command line gives it
				v.Pos = strings.TrimPrefix(v.Pos, root+"/")
				vars[k] = v
			}
			_, err = Load(Options{File: filepath.Join(root, "images.star"), Registry: testRegistry(), Vars: vars, Warn: func(string) {}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, c.want)
			}
		})
	}
}

func TestVarFileSyntaxErrorsNameTheirPlace(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct{ src, want string }{
		"bad.pkrvars.hcl":   {"region = \"eu-west-1\"\ncpus = \n", "bad.pkrvars.hcl:2:8: Invalid expression; Expected the start of an expression, but found an invalid expression token."},
		"block.pkrvars.hcl": {"region = \"x\"\nsource \"a\" {}\n", `block.pkrvars.hcl:2:1: "source" is a block; a var-file holds only name = value lines`},
		"fn.pkrvars.hcl":    {"region = upper(\"x\")\n", `fn.pkrvars.hcl:1:1: variable "region": a var-file value must be a literal (no variables or functions): Function calls not allowed`},
		"ref.pkrvars.hcl":   {"region = var.other\n", `ref.pkrvars.hcl:1:1: variable "region": a var-file value must be a literal (no variables or functions): Variables not allowed`},
		"two.json":          {`{"a": 1} {"b": 2}`, "more than one value in the file"},
		"name.json":         {"{\n \"a-b\": 1}", `name.json:2:2: "a-b" is not a valid variable name`},
	}
	for name, c := range cases {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(c.src), 0o644)
		_, err := builtins.ReadVarFile(p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error:\n%v\nwant it to contain:\n%s", name, err, c.want)
		}
	}
}

func TestVarFileVariableNotDeclaredIsAWarningUnlessStrict(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"images.star":        "region = var(\"region\", default = \"x\")\nbox(name = \"a\", region = region)\n",
		"shared.pkrvars.hcl": "region = \"eu-west-1\"\nregoin = \"typo\"\nvpc_id = \"vpc-1\"\n",
	})
	vars, err := builtins.ReadVarFile(filepath.Join(root, "shared.pkrvars.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range vars {
		v.Pos = strings.TrimPrefix(v.Pos, root+"/")
		vars[k] = v
	}
	var warnings []string
	opts := Options{File: filepath.Join(root, "images.star"), Registry: testRegistry(), Vars: vars, Warn: func(m string) { warnings = append(warnings, m) }}
	if _, err := Load(opts); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`shared.pkrvars.hcl:2:1: variable "regoin" is not declared in the description (did you mean "region"?); it is ignored (--strict-vars makes this an error)`,
		`shared.pkrvars.hcl:3:1: variable "vpc_id" is not declared in the description; it is ignored (--strict-vars makes this an error)`,
	}
	if strings.Join(warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}
	opts.StrictVars = true
	_, err = Load(opts)
	if want := `shared.pkrvars.hcl:2:1: variable "regoin" is not declared in the description (did you mean "region"?); declared: region`; err == nil || err.Error() != want {
		t.Errorf("strict: error = %v\nwant %s", err, want)
	}
}

func TestEnvironmentInputDeclaredByVar(t *testing.T) {
	files := map[string]string{"images.star": `
region = var("region", env = "AWS_REGION", default = "us-east-1")
count = var("count", env = "COUNT", type = "int", default = 1)
box(name = "a", region = region, size = count)
`}
	env := map[string]string{"AWS_REGION": "eu-west-2", "COUNT": ""}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	d, err := Load(Options{File: filepath.Join(testkit.Workspace(t, files), "images.star"), Registry: testRegistry(), Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := d.Graph.Node("a")
	if got, _ := n.Settings.Get("region"); got == nil || got.(interface{ Type() string }).Type() != "string" {
		t.Fatalf("region = %v", got)
	}
	shown := []string{d.Variables[0].Value + " " + d.Variables[0].Shown(), d.Variables[1].Value + " " + d.Variables[1].Shown()}
	want := []string{`"eu-west-2" ($AWS_REGION)`, `1 ($COUNT not set: from its default)`}
	if strings.Join(shown, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan shows:\n%s\nwant:\n%s", strings.Join(shown, "\n"), strings.Join(want, "\n"))
	}
	// --var and IMGBUILD_VAR_ win over the environment input.
	env["IMGBUILD_VAR_region"] = "ap-south-1"
	d, err = Load(Options{File: filepath.Join(testkit.Workspace(t, files), "images.star"), Registry: testRegistry(), Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	if v := d.Variables[0]; v.Value != `"ap-south-1"` || v.Source != "$IMGBUILD_VAR_region" {
		t.Errorf("region = %s from %s, want ap-south-1 from $IMGBUILD_VAR_region", v.Value, v.Source)
	}
	env["COUNT"] = "many"
	_, err = Load(Options{File: filepath.Join(testkit.Workspace(t, files), "images.star"), Registry: testRegistry(), Getenv: getenv})
	if want := `var: $COUNT: variable "count": "many" is not an int (the variable is declared int)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestVarTypeErrors(t *testing.T) {
	cases := map[string]string{
		`var("a", type = "strng")`:                   `var: for parameter type: type "strng": unknown type "strng"; write one of string, int, float, number, bool, list, dict, any, or list(T) or dict(T)`,
		`var("a", type = "list(string")`:             `type "list(string": missing ')'`,
		`var("a", type = "int", default = "x")`:      `var: the default of "a": "x" is not an int (the variable is declared int)`,
		`var("a", env = "AWS-REGION", default = "")`: `var: for parameter env: "AWS-REGION" is not an environment variable's name`,
		`var("a", env = "A_B")`:                      `var: variable "a" is required but not set: pass --var a=..., put it in a --var-file, set IMGBUILD_VAR_a or $A_B, or give it a default`,
	}
	for src, want := range cases {
		_, err := load(t, map[string]string{"images.star": src + "\n"}, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error:\n%v\nwant it to contain:\n%s", src, err, want)
		}
	}
}
