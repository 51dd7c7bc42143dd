package output

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
)

// The marker that an output is imgbuild's is its record under
// .imgbuild/outputs/: one small JSON file per output path, naming the
// build that made it and identifying what it placed (every entry of a
// directory). A marker inside the output would change the artifact (a
// file in a box, a disk image, a root tree), and extended attributes do
// not survive every file system or copy; the record also tells a file
// that a user put in place of imgbuild's, under the same name, from the
// one imgbuild wrote.

// ledgerDir is where the records live, under the workspace.
const ledgerDir = StateDir + "/outputs"

const (
	kindFile = "file"
	kindDir  = "dir"
)

// record says that imgbuild placed an output.
type record struct {
	// Path is the output, relative to the workspace, slash-separated.
	Path string `json:"path"`
	// Build made it.
	Build string `json:"build"`
	Kind  string `json:"kind"`
	// Entries identify what was placed: "." is the output itself; a
	// directory's entries follow by their path inside it.
	Entries map[string]string `json:"entries"`
	// Until the build that placed it is over: the Set's id, the name
	// beside Path of what it replaced, and that output's record, so that
	// the placement of a killed build can be undone (see JournalKind).
	Set    string  `json:"set,omitempty"`
	Aside  string  `json:"aside,omitempty"`
	Before *record `json:"before,omitempty"`

	intent bool // read from an intent, not the record proper
}

func recordName(rel string) string {
	sum := sha256.Sum256([]byte(rel))
	return hex.EncodeToString(sum[:12]) + ".json"
}

// ledger reads and writes the records of one workspace.
type ledger struct {
	root *os.Root
}

// all returns every record by path.
func (l ledger) all() (map[string]*record, error) { return l.read(".json", "") }

// read returns, by path, the records in the files whose names end with
// suffix (and, when set is not "", of that set). A file that is not a
// record marks nothing.
func (l ledger) read(suffix, set string) (map[string]*record, error) {
	out := map[string]*record{}
	entries, err := fs.ReadDir(l.root.FS(), ledgerDir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), suffix) || !e.Type().IsRegular() {
			continue
		}
		data, err := l.root.ReadFile(path.Join(ledgerDir, e.Name()))
		if err != nil {
			continue // removed meanwhile
		}
		var r record
		if json.Unmarshal(data, &r) != nil || r.Path == "" || (set != "" && r.Set != set) {
			continue
		}
		out[r.Path] = &r
	}
	return out, nil
}

// put writes r, replacing the path's earlier record.
func (l ledger) put(r *record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return l.write(recordName(r.Path), data, true)
}

// write writes data and a newline as the ledger's file name, atomically;
// replace says whether an existing file of that name is replaced.
func (l ledger) write(name string, data []byte, replace bool) error {
	dir, err := openDir(l.root, ledgerDir)
	if err != nil {
		return err
	}
	defer dir.Close()
	return writeInDir(dir, name, append(data, '\n'), 0o644, replace)
}

// An intent is a record written before its output moves into place, for a
// killed build's reaper: <record name>.<set>.intent beside the records,
// which all does not read.
func intentName(rel, set string) string {
	return strings.TrimSuffix(recordName(rel), ".json") + "." + set + ".intent"
}

// putIntent writes r as its set's intent.
func (l ledger) putIntent(r *record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return l.write(intentName(r.Path, r.Set), data, false)
}

// dropIntent removes the set's intent for rel.
func (l ledger) dropIntent(rel, set string) {
	_ = l.root.Remove(path.Join(ledgerDir, intentName(rel, set)))
}

// intents returns the intents of set, by path.
func (l ledger) intents(set string) (map[string]*record, error) {
	return l.read("."+set+".intent", set)
}

// drop removes the record of rel, if any.
func (l ledger) drop(rel string) error {
	err := l.root.Remove(path.Join(ledgerDir, recordName(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
