// Package post holds the post-processors: manifest() records each build's
// artifact in a JSON file shared by the builds of a run; checksum() writes
// checksum files for an artifact's files.
//
// Both read and write files on this machine; relative paths (the
// artifact's files, output) are relative to the current directory of the
// process, which the command line tool sets to the workspace. The package
// knows nothing of Starlark (the builtins layer decodes keyword arguments
// into the configs) and nothing of any platform.
package post

import "github.com/imgbuild/imgbuild/engine"

// Register adds manifest and checksum to r.
func Register(r *engine.Registry) {
	r.AddPostProcessor(ManifestDef())
	r.AddPostProcessor(ChecksumDef())
}
