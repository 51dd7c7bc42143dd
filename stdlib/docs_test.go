package stdlib

import (
	"regexp"
	"strings"
	"testing"
)

// TestEveryPublicFunctionHasASignatureAndADocstring: imgbuild docs reads
// them from the modules' source.
func TestEveryPublicFunctionHasASignatureAndADocstring(t *testing.T) {
	fns, err := Functions()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]Function{}
	for _, f := range fns {
		names[f.Name] = f
		if f.Doc == "" {
			t.Errorf("%s in %s has no docstring", f.Name, f.Module)
		}
		if strings.HasPrefix(f.Name, "_") {
			t.Errorf("private %s listed", f.Name)
		}
	}
	ai, ok := names["apt_install"]
	if !ok || ai.Module != "@stdlib//apt.star" || !strings.HasPrefix(ai.Signature, "apt_install(packages, update = True,") || !strings.Contains(ai.Doc, "\n  packages: package names") {
		t.Errorf("apt_install: %+v", ai)
	}
	if _, ok := names["cleanup"]; !ok {
		t.Errorf("cleanup missing from %v", fns)
	}
}

// argLine is a line of a docstring's Args section: "  a: ..." or
// "  a, b, c: ...".
var argLine = regexp.MustCompile(`(?m)^  (\*{0,2}[a-z0-9_]+(?:, \*{0,2}[a-z0-9_]+)*):`)

// TestEveryParameterIsDocumented: imgbuild docs shows a function's
// docstring as its reference, so its Args section names every parameter.
func TestEveryParameterIsDocumented(t *testing.T) {
	fns, err := Functions()
	if err != nil {
		t.Fatal(err)
	}
	modules := map[string]bool{}
	for _, f := range fns {
		modules[f.Module] = true
		if len(f.Params) == 0 {
			continue
		}
		args, ok := strings.CutPrefix(f.Doc[strings.Index(f.Doc, "\nArgs:\n")+1:], "Args:\n")
		if !ok {
			t.Errorf("%s (%s) has no Args: section in its docstring", f.Name, f.Module)
			continue
		}
		documented := map[string]bool{}
		for _, m := range argLine.FindAllStringSubmatch(args, -1) {
			for _, name := range strings.Split(m[1], ", ") {
				documented[name] = true
			}
		}
		for _, p := range f.Params {
			if !documented[p] {
				t.Errorf("%s (%s): parameter %s is not in its Args section:\n%s", f.Name, f.Module, p, f.Doc)
			}
		}
	}
	for _, m := range []string{"apt", "cleanup", "users", "sshd", "cloud_init", "time", "updates", "kernel"} {
		if !modules["@stdlib//"+m+".star"] {
			t.Errorf("no function of @stdlib//%s.star is listed", m)
		}
	}
	for m := range modules {
		if strings.Contains(m, "internal") {
			t.Errorf("%s is listed: internal/ is not a public module", m)
		}
	}
}

func TestParamNames(t *testing.T) {
	fns, err := functionsOf("@stdlib//x.star", []byte("def f(a, b = 1, *args, c = [1, 2], **kw):\n    \"\"\"Doc.\"\"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fns[0].Params, " "); got != "a b *args c **kw" {
		t.Errorf("Params = %q", got)
	}
}

func TestModuleDoc(t *testing.T) {
	doc, ok := ModuleDoc("@stdlib//sshd.star")
	if !ok || !strings.HasPrefix(doc, "A hardened OpenSSH server configuration") || !strings.Contains(doc, "\n    load(\"@stdlib//sshd.star\", \"sshd_config\")\n") {
		t.Errorf("ModuleDoc(sshd.star) = %q, %v", doc, ok)
	}
	if _, ok := ModuleDoc("users.star"); !ok {
		t.Error("ModuleDoc(users.star) not found")
	}
	for _, m := range []string{"nope.star", "@stdlib//internal/sh.star", "sshd_config"} {
		if doc, ok := ModuleDoc(m); ok {
			t.Errorf("ModuleDoc(%q) = %q, want none", m, doc)
		}
	}
}
