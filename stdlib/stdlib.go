// Package stdlib holds the Starlark modules shipped inside the binary,
// loaded as @stdlib//name.star. Each module is tested by this package's Go
// tests, through real builds where the module's effect can be observed.
package stdlib

import "embed"

// FS holds the modules, by name ("apt.star"), and internal/, what they
// share (imgbuild docs does not list it).
//
//go:embed *.star internal/*.star
var FS embed.FS
