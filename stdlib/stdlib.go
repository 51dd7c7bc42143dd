// Package stdlib holds the Starlark modules shipped inside the binary,
// loaded as @stdlib//name.star. Each module has a test in testdata-style
// *_test.star files run by this package's Go test.
package stdlib

import "embed"

// FS holds the modules, by name ("apt.star").
//
//go:embed *.star
var FS embed.FS
