package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadState feeds LoadState any state file and log: it returns a state
// or an error that names the damaged file, and never panics.
func FuzzLoadState(f *testing.F) {
	f.Add(`{"builds": {"a": {"driver": "local", "status": "succeeded", "fingerprint": "x", "artifact": {"id": "o"}}}}`, `{"build": "b", "record": {"driver": "null"}}`+"\n")
	f.Add(`{}`, `{"build": "b", "record": {"inputs": {"settings": {"k": "v"}}}}`+"\n"+`{"bu`)
	f.Add(`not json`, ``)
	f.Fuzz(func(t *testing.T, state, log string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.json")
		os.WriteFile(path, []byte(state), 0o644)
		os.WriteFile(path+".log", []byte(log), 0o644)
		s, err := LoadState(path)
		if err != nil {
			if !strings.Contains(err.Error(), "state") {
				t.Errorf("error does not name the state: %v", err)
			}
			return
		}
		for _, b := range s.Builds {
			if b != nil && b.Built() {
				_ = b.Identity()
			}
		}
	})
}
