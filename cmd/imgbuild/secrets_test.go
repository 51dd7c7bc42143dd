package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// planted is the secret the end-to-end test plants; it holds a comma, a
// quote and a space so that splitting, quoting and escaping are tried too.
const planted = `Zq7,pl4nted "s3cret"`

// TestPlantedSecretIsShownNowhere plants a sensitive variable in every
// place a description can put it, formats it every way a description can,
// runs a build that prints it (also in a line longer than the 64 KiB split
// bound, across the split) and one that fails with it in its error, and an
// invalid description that quotes it in a validation error. It then greps
// everything imgbuild shows or writes: plan text, --json and --dot, the
// terminal, --json events, the summary, the logs, the state and the
// journal under .imgbuild, the manifest, and the error messages. The bar
// is zero. The build itself gets the real value, every way it was made.
func TestPlantedSecretIsShownNowhere(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{
		"images.star": `
token = var("token", sensitive = True)
kept = []
again = var("again", default = "x", sensitive = True, validation = lambda v: kept.append(token) or True)
local(
    name = "web",
    output_directory = "out-" + token.replace(" ", "_").replace('"', "").replace(",", "_"),
    env = {"TOKEN": token, "KEPT": kept[0]},
    files = {
        "plus": "token = " + token,
        "percent": "token = %s" % token,
        "format": "token = {}".format(token),
        "str": str(token),
        "join": ",".join(["a", token]),
        "json": json.encode({"t": token}),
    },
    provisioners = [shell(inline = [
        "echo the token is $TOKEN",
        "echo and on stderr $KEPT >&2",
        "printf 'x%.0s' $(seq 65530); echo \"$TOKEN\"",
    ])],
    post = [manifest(output = "output/manifest.json", custom_data = {"auth": token, "formatted": "%s!" % token})],
)
local(
    name = "bad",
    env = {"TOKEN": token},
    provisioners = [shell(inline = ["echo failing with $TOKEN >&2", "exit 3"])],
)
`,
		"invalid.star": `
token = var("token", sensitive = True)
null(name = "a", ssh_host = "127.0.0.1", ssh_timeout = token)
`,
		"invalid2.star": `
token = var("token", sensitive = True)
local(name = "a", output_directory = token, force = "%s" % token)
`,
	})
	tokenVar := "token=" + planted
	var seen bytes.Buffer
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"validate", "images.star", "--var", tokenVar}, 0},
		{[]string{"plan", "images.star", "--var", tokenVar}, 0},
		{[]string{"plan", "images.star", "--var", tokenVar, "--json"}, 0},
		{[]string{"plan", "images.star", "--var", tokenVar, "--dot"}, 0},
		{[]string{"run", "images.star", "--var", tokenVar, "--no-color"}, 1},
		{[]string{"run", "images.star", "--var", tokenVar, "--json", "--only", "bad"}, 1},
		{[]string{"validate", "invalid.star", "--var", tokenVar}, 2},
		{[]string{"plan", "invalid2.star", "--var", tokenVar}, 2},
	} {
		code, out, errOut := imgbuild(t, dir, c.args...)
		if code != c.code {
			t.Errorf("imgbuild %s: exit %d, want %d\n%s\n%s", strings.Join(c.args, " "), code, c.code, out, errOut)
		}
		seen.WriteString(out + errOut)
		if leak := findSecret(out + errOut); leak != "" {
			t.Errorf("imgbuild %s shows %q of the secret:\n%s%s", strings.Join(c.args, " "), leak, out, errOut)
		}
	}
	for _, want := range []string{
		"the token is (sensitive)",
		"and on stderr (sensitive)",
		"failing with (sensitive)",
		"for parameter ssh_timeout: (sensitive) is not a duration",
		"invalid2.star:3:45: local: for parameter force: got string, want bool",
	} {
		if !strings.Contains(seen.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, seen.String())
		}
	}
	// The summary's ARTIFACT column names the output directory, made from
	// the secret.
	summaryRow := false
	for _, l := range strings.Split(seen.String(), "\n") {
		summaryRow = summaryRow || strings.HasPrefix(l, "| web ") && strings.Contains(l, "| succeeded |") && strings.Contains(l, "(sensitive)")
	}
	if !summaryRow {
		t.Errorf("the summary does not show web's artifact as (sensitive):\n%s", seen.String())
	}
	// Everything imgbuild wrote: state, journal, logs, the manifest.
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), "invalid") || d.Name() == "images.star" || strings.Contains(p, "/out-") {
			return nil
		}
		data, _ := os.ReadFile(p)
		if leak := findSecret(string(data)); leak != "" {
			t.Errorf("%s holds %q of the secret", p, leak)
		}
		return nil
	})
	// The build got the real value, every way it was made.
	outs, _ := filepath.Glob(filepath.Join(dir, "out-*"))
	if len(outs) != 1 {
		t.Fatalf("output directories: %v", outs)
	}
	for name, want := range map[string]string{
		"plus":    "token = " + planted,
		"percent": "token = " + planted,
		"format":  "token = " + planted,
		"str":     planted,
		"join":    "a," + planted,
		"json":    `{"t":"Zq7,pl4nted \"s3cret\""}`,
	} {
		got, _ := os.ReadFile(filepath.Join(outs[0], name))
		if string(got) != want {
			t.Errorf("the build's %s is %q, want %q", name, got, want)
		}
	}
}

// findSecret returns the longest piece (8 bytes or more) of the planted
// secret, or of its quoted form, that text holds, or "".
func findSecret(text string) string {
	for _, form := range []string{planted, `Zq7,pl4nted \"s3cret\"`} {
		for n := len(form); n >= 8; n-- {
			for i := 0; i+n <= len(form); i++ {
				if strings.Contains(text, form[i:i+n]) {
					return form[i : i+n]
				}
			}
		}
	}
	return ""
}

func TestDocsVarSaysHowSecretsFormat(t *testing.T) {
	code, out, _ := imgbuild(t, t.TempDir(), "docs", "var")
	for _, want := range []string{`"Bearer %s" % tok`, `"{}".format(tok)`, `" ".join(["Bearer", tok])`, `str(tok)`, `tok == "plain string" is always False`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("imgbuild docs var (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
}

// TestDriversValidationErrorsSaySensitive plants the secret in keywords the
// real drivers validate (regions, AMI ids, instance types, enums, scripts,
// durations, names, non-string defaults): each message says (sensitive)
// where the value was.
func TestDriversValidationErrorsSaySensitive(t *testing.T) {
	const ebs = `instance_type = "t3.micro", ssh_username = "admin", ami_name = "x"`
	cases := []struct{ src, want string }{
		{`amazon_ebs(name = "a", region = tok, source_ami = "ami-12345678", ` + ebs + `)`, "amazon_ebs: for parameter region: unknown region (sensitive);"},
		{`amazon_ebs(name = "a", region = "eu-west-1", source_ami = "ami-" + tok, ` + ebs + `)`, `amazon_ebs: for parameter source_ami: "ami-(sensitive)" is not an AMI id`},
		{`amazon_ebs(name = "a", region = "eu-west-1", source_ami = "ami-12345678", ami_name = "x", ssh_username = "admin", instance_type = "%s" % tok)`, "amazon_ebs: for parameter instance_type: (sensitive) is not an EC2 instance type"},
		{`x = vagrant_box(compression = tok)`, `vagrant_box: for parameter compression: (sensitive) is not one of "gzip", "none"`},
		{`local(name = "a", provisioners = [shell(script = "scripts/" + tok)])`, `shell: for parameter script: "scripts/(sensitive)" does not exist (looked for `},
		{`local(name = "a", provisioners = [shell(inline = ["x"], timeout = "{}".format(tok))])`, "shell: for parameter timeout: (sensitive) is not a duration"},
		{`local(name = "a-" + tok)`, "local: for parameter name: got sensitive string, want string"},
		{`n = var("n", default = 2, sensitive = True)`, `var: sensitive variable "n" must be a string, not int (its default)`},
	}
	for _, c := range cases {
		dir := testkit.Workspace(t, map[string]string{"t.star": "tok = var(\"tok\", sensitive = True)\n" + c.src + "\n"})
		code, out, errOut := imgbuild(t, dir, "validate", "t.star", "--var", "tok="+planted)
		if code != exitInvalid || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d\n%s%s\nwant exit 2 and %q", c.src, code, out, errOut, c.want)
		}
		if leak := findSecret(out + errOut); leak != "" {
			t.Errorf("%s: shows %q of the secret: %s", c.src, leak, errOut)
		}
	}
}
