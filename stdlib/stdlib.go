// Package stdlib holds the Starlark modules shipped inside the binary,
// loaded as @stdlib//name.star. Each module is tested by this package's Go
// tests, through real builds where the module's effect can be observed.
package stdlib

import "embed"

// FS holds the modules, by name ("apt.star").
//
//go:embed *.star
var FS embed.FS
