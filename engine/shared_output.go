package engine

import (
	"context"

	"github.com/imgbuild/imgbuild/engine/filelock"
)

// UpdateShared changes rel, an output file that the builds of this run
// and of runs beside it share (a manifest, a box catalog), holding the
// file's lock so that each build's change keeps the others': change gets
// the content (nil when there is none yet) and returns the new one, as
// for output.Set.Update.
func (e *PostEnv) UpdateShared(ctx context.Context, rel, keyword string, change func(old []byte) ([]byte, error)) error {
	outs := e.OutputSet()
	unlock, err := filelock.Lock(ctx, filelock.For(e.Workspace, outs.Abs(rel)))
	if err != nil {
		return err
	}
	defer unlock()
	return outs.Update(rel, keyword, change)
}
