package diskpost

import (
	"fmt"
	"os"

	"github.com/imgbuild/imgbuild/engine/output"
)

// WriteOutput writes the output file rel (named by keyword in messages)
// through the build's output set: fill writes the temporary file beside
// its place (f.File is open; a program may write f.Path() instead), which
// is moved into place once fill is done. On failure nothing is left. It
// returns the output's path as the workspace shows it, and its size.
func WriteOutput(outs *output.Set, rel, keyword string, fill func(f *output.File) error) (string, int64, error) {
	f, err := outs.Create(rel, keyword)
	if err != nil {
		return "", 0, err
	}
	if err := fill(f); err != nil {
		f.Discard()
		return "", 0, fmt.Errorf("writing %s: %w", f.Rel(), err)
	}
	placed, err := f.Place()
	if err != nil {
		f.Discard()
		return "", 0, err
	}
	fi, err := os.Stat(placed)
	if err != nil {
		return "", 0, err
	}
	return outs.Show(placed), fi.Size(), nil
}
