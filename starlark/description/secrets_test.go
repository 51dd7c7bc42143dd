package description

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/builtins"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

// tok is the planted secret: no message may show it, or any part of it.
const tok = "Zq7-pl4nted-s3cret"

// vaultConfig is a fixture builder whose keywords are validated the ways
// drivers validate theirs: a duration, an enum, a path, and a Validate
// method that quotes the value it rejects (as amazon's regions do).
type vaultConfig struct {
	Timeout time.Duration     `kw:"timeout" doc:"."`
	Mode    string            `kw:"mode" enum:"fast|slow" doc:"."`
	Region  string            `kw:"region" doc:"."`
	Script  string            `kw:"script" path:"file" doc:"."`
	Count   int               `kw:"count" doc:"."`
	Env     map[string]string `kw:"env" doc:"."`
	Output  string            `kw:"output_directory" doc:"."`
}

func (c *vaultConfig) Validate(schema.Deferred) error {
	if c.Region != "" && !strings.HasPrefix(c.Region, "eu-") {
		return schema.Errorf("region", "%q is not a region imgbuild knows (eu-west-1, ...)", c.Region)
	}
	return nil
}

func secretsRegistry() *engine.Registry {
	reg := testRegistry()
	reg.AddBuilder(&engine.BuilderDef{Schema: schema.Of("vault", "A fixture builder.", &vaultConfig{}), Outputs: []engine.Output{{Name: "image_id", Doc: "."}}})
	return reg
}

func loadSecret(t *testing.T, src string, print func(pos, msg string)) (*Description, error) {
	t.Helper()
	root := testkit.Workspace(t, map[string]string{"images.star": "tok = var(\"tok\", sensitive = True)\n" + src})
	return Load(Options{File: filepath.Join(root, "images.star"), Registry: secretsRegistry(), Print: print,
		Vars: map[string]builtins.VarValue{"tok": {Raw: tok, Source: "--var"}}})
}

// TestSensitiveValuesAreHiddenInEveryError plants a secret in each kind of
// validated keyword and in Starlark's own errors: the message says
// (sensitive) where the value was.
func TestSensitiveValuesAreHiddenInEveryError(t *testing.T) {
	cases := []struct{ src, want string }{
		{`vault(name = "a", timeout = tok)`, `vault: for parameter timeout: (sensitive) is not a duration (write it like "90s", "5m" or "1h30m")`},
		{`vault(name = "a", timeout = "%s" % tok)`, `vault: for parameter timeout: (sensitive) is not a duration`},
		{`vault(name = "a", mode = tok)`, `vault: for parameter mode: (sensitive) is not one of "fast", "slow"`},
		{`vault(name = "a", region = "us-" + tok)`, `vault: for parameter region: "us-(sensitive)" is not a region imgbuild knows`},
		{`vault(name = "a", script = tok)`, `vault: for parameter script: (sensitive) does not exist (looked for `},
		{`vault(name = "a", count = tok)`, `vault: for parameter count: got string, want int`},
		{`vault(name = tok)`, `vault: for parameter name: got sensitive string, want string`},
		{`fail("bad token: " + tok)`, `fail: bad token: (sensitive)`},
		{`fail("bad token: %s" % tok)`, `fail: bad token: (sensitive)`},
		{`x = {}[tok]`, `key (sensitive) not in dict`},
		{`x = int(tok)`, `int: cannot convert sensitive string to int`},
		{"def check(v):\n    fail(\"got \" + v)\nv = var(\"v\", default = \"x\", sensitive = True, validation = check)", `var: validation of "v" failed: fail: got (sensitive)`},
		{"v = var(\"v\", default = \"x" + tok + "\", sensitive = True, validation = lambda v: \"not this: \" + v)", `var: variable "v": value (sensitive) (from its default) is not valid: not this: (sensitive)`},
		{`n = var("n", default = 3, sensitive = True)`, `var: sensitive variable "n" must be a string, not int (its default)`},
		{"f = \"{}\".format\nvault(name = \"a\", region = f(tok).upper())", `vault: for parameter region: a sensitive value was formatted into this string and the text then cut or changed, so its value is lost`},
	}
	for _, c := range cases {
		_, err := loadSecret(t, c.src, nil)
		if err == nil {
			t.Errorf("%s: no error", c.src)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\nerror %q\nwant  %q", c.src, err, c.want)
		}
		for n := 4; n <= len(tok); n++ {
			if strings.Contains(err.Error(), tok[:n]) || strings.Contains(strings.ToUpper(err.Error()), strings.ToUpper(tok[len(tok)-n:])) {
				t.Errorf("%s: error shows part of the secret: %v", c.src, err)
				break
			}
		}
	}
}

// TestFormattingKeepsTheSecret pins down that every way of making a string
// from a secret (+, %, format, join, str, repr, json.encode, the string
// methods, slicing) gives the real value to the build, marked sensitive,
// and a sensitive string to the description.
func TestFormattingKeepsTheSecret(t *testing.T) {
	cases := []struct{ expr, want string }{
		{`tok`, tok},
		{`"a-" + tok + "-b"`, "a-" + tok + "-b"},
		{`"%s" % tok`, tok},
		{`"a-%s-b" % tok`, "a-" + tok + "-b"},
		{`"%s/%s" % (tok, "x")`, tok + "/x"},
		{`"%(t)s!" % {"t": tok}`, tok + "!"},
		{`"{}".format(tok)`, tok},
		{`"<{t}>".format(t = tok)`, "<" + tok + ">"},
		{`tok.format()`, tok},
		{`str(tok)`, tok},
		{`str("k=" + tok)`, "k=" + tok},
		{`repr(tok)`, `"` + tok + `"`},
		{`",".join([tok, "b"])`, tok + ",b"},
		{`"-".join(["a", "%s" % tok])`, "a-" + tok},
		{`tok.upper()`, strings.ToUpper(tok)},
		{`tok.replace("Zq7", "Aa1")`, strings.Replace(tok, "Zq7", "Aa1", 1)},
		{`tok.split("-")[1]`, "pl4nted"},
		{`tok[4:11]`, "pl4nted"},
		{`tok * 2`, tok + tok},
		{`json.encode({"t": tok})`, `{"t":"` + tok + `"}`},
		{`_kept[0]`, tok},
	}
	for _, c := range cases {
		// A validation callable receives a sensitive string: what it keeps
		// (_kept[0]) stays one.
		src := "_kept = []\nv = var(\"v\", default = \"" + tok + "\", sensitive = True, validation = lambda v: _kept.append(v))\n" +
			"s = " + c.expr + "\n" +
			"if type(s) != \"sensitive string\":\n    fail(\"type \" + type(s))\n" +
			"if len(s) != " + fmt.Sprint(len(c.want)) + ":\n    fail(\"len %d\" % len(s))\n" +
			"vault(name = \"a\", env = {\"T\": s})\n"
		d, err := loadSecret(t, src, nil)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		n, _ := d.Graph.Node("a")
		env, _ := n.Settings.Get("env")
		got, _ := env.(*value.Map).Get("T")
		if s, ok := got.(value.String); !ok || s.S != c.want || !s.Sensitive {
			t.Errorf("%s reached the build as %#v, want the sensitive string %q", c.expr, got, c.want)
		}
		var plan strings.Builder
		engine.MakePlan(d.Graph, secretsRegistry(), d.Root).WriteText(&plan)
		if !strings.Contains(plan.String(), `env = {"T": (sensitive)}`) || strings.Contains(plan.String(), "pl4nted") {
			t.Errorf("%s: plan:\n%s", c.expr, plan.String())
		}
	}
}

// TestSecretsJoinedWithOutputsStaySensitive formats a secret together with
// another build's output: the result is a template whose secret part is
// sensitive.
func TestSecretsJoinedWithOutputsStaySensitive(t *testing.T) {
	for _, expr := range []string{`"%s:%s" % (base.image_id, tok)`, `":".join([base.image_id, tok])`, `base.image_id + ":" + tok`, `"{}:{}".format(base.image_id, tok)`} {
		d, err := loadSecret(t, "base = box(name = \"base\", region = \"r\")\nvault(name = \"a\", env = {\"T\": "+expr+"})\n", nil)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		n, _ := d.Graph.Node("a")
		env, _ := n.Settings.Get("env")
		got, _ := env.(*value.Map).Get("T")
		tm, ok := got.(*value.Template)
		want := []value.Part{{Ref: &value.Ref{Build: "base", Output: "image_id"}}, {Lit: ":"}, {Lit: tok, Sensitive: true}}
		if !ok || fmt.Sprint(tm.Parts) != fmt.Sprint(want) {
			t.Errorf("%s reached the build as %#v, want the template %v", expr, got, want)
		}
	}
}

func TestPrintShowsSecretsAsSensitive(t *testing.T) {
	var printed []string
	_, err := loadSecret(t, `print(tok, "%s" % tok, [tok], "{}".format(tok))`, func(pos, msg string) { printed = append(printed, msg) })
	if err != nil {
		t.Fatal(err)
	}
	if len(printed) != 1 || printed[0] != "(sensitive) (sensitive) [(sensitive)] (sensitive)" {
		t.Errorf("printed %q", printed)
	}
}
