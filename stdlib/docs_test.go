package stdlib

import (
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
