package render

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/imgbuild/imgbuild/engine/event"
)

// JSON prints each event as one line holding json.Marshal(event): the
// field names are event.Event's struct tags ("time", "type", "build",
// "step", "stream", "message", "done", "total", "unit", "status", "error",
// "elapsed_ns", "artifact", "items"), empty fields left out.
type JSON struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewJSON returns a JSON lines renderer writing to w.
func NewJSON(w io.Writer) *JSON { return &JSON{w: w} }

// Handle implements event.Sink. An artifact that cannot be encoded is
// replaced by {"error": "..."} rather than losing the event.
func (j *JSON) Handle(e event.Event) {
	b, err := json.Marshal(e)
	if err != nil {
		e.Artifact = map[string]string{"error": fmt.Sprintf("cannot encode the artifact: %v", err)}
		if b, err = json.Marshal(e); err != nil {
			return
		}
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return
	}
	if _, err := j.w.Write(b); err != nil {
		j.err = err
	}
}

// Close reports the first error writing, if any.
func (j *JSON) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}
