package hcldiag

import (
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func TestTextGivesTheFirstErrorWithItsPosition(t *testing.T) {
	_, diags := hclsyntax.ParseConfig([]byte("a = 1\nb = \n"), "vars.pkrvars.hcl", hcl.InitialPos)
	if !diags.HasErrors() {
		t.Fatal("no error")
	}
	if got, want := Text(diags), "vars.pkrvars.hcl:2:5: Invalid expression; Expected the start of an expression, but found an invalid expression token."; got != want {
		t.Errorf("Text = %q\nwant   %q", got, want)
	}
}

func TestTextSkipsWarningsAndNeedsNoPosition(t *testing.T) {
	diags := hcl.Diagnostics{
		{Severity: hcl.DiagWarning, Summary: "a warning"},
		{Severity: hcl.DiagError, Summary: "Bad thing"},
	}
	if got := Text(diags); got != "Bad thing" {
		t.Errorf("Text = %q", got)
	}
}

func TestPos(t *testing.T) {
	if got := Pos("a.hcl", hcl.Pos{Line: 3, Column: 7}); got != "a.hcl:3:7" {
		t.Errorf("Pos = %q", got)
	}
}
