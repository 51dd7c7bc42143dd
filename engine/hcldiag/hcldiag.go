// Package hcldiag says where and what an HCL error is, in the one form
// imgbuild's messages use: "file:line:col: summary; detail". The var-file
// and template_file builtins and the Packer importer report HCL errors
// through it.
package hcldiag

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// Pos formats p in file as "file:line:col".
func Pos(file string, p hcl.Pos) string {
	return fmt.Sprintf("%s:%d:%d", file, p.Line, p.Column)
}

// Text formats the first error of diags as "file:line:col: summary;
// detail" (without the position when the error has none, without the
// detail when it is empty). Diagnostics without an error are formatted as
// hcl formats them.
func Text(diags hcl.Diagnostics) string {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += "; " + d.Detail
		}
		if d.Subject != nil {
			return Pos(d.Subject.Filename, d.Subject.Start) + ": " + msg
		}
		return msg
	}
	return diags.Error()
}
