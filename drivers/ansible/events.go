package ansible

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// Event is one line of imgbuild's callback plugin (callback/imgbuild.py):
// a playbook, play or task starting, a task's result on a host, or the
// closing statistics.
type Event struct {
	// Event is "start", "play", "task", "ok", "failed", "unreachable",
	// "skipped" or "stats".
	Event string `json:"event"`
	// Ansible is ansible-core's version ("start").
	Ansible string `json:"ansible,omitempty"`
	// Playbook is the playbook's file ("start").
	Playbook string `json:"playbook,omitempty"`
	// Name is the play's or the task's name ("play", "task").
	Name string `json:"name,omitempty"`
	// Task is the task a result is of; Path where it is written
	// ("site.yml:12"); Host the inventory host it ran on.
	Task string `json:"task,omitempty"`
	Path string `json:"path,omitempty"`
	Host string `json:"host,omitempty"`
	// Handler is set for a handler's start.
	Handler bool `json:"handler,omitempty"`
	// Changed says the task changed the host; Msg what went wrong;
	// Ignored that a failure was ignored (ignore_errors).
	Changed bool   `json:"changed,omitempty"`
	Msg     string `json:"msg,omitempty"`
	Ignored bool   `json:"ignored,omitempty"`
	// Hosts are the per-host counts ("stats"): ok, changed, failures,
	// unreachable, skipped, rescued, ignored.
	Hosts map[string]map[string]int `json:"hosts,omitempty"`
}

// newTag returns a tag for a run's event lines that the playbook's own
// output cannot guess.
func newTag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "imgbuild-ansible-event-" + hex.EncodeToString(b[:])
}

// ParseEvent reads one line of output: ok is false for a line that is not
// an event of the run tagged tag (Ansible's own output).
func ParseEvent(tag, line string) (ev Event, ok bool, err error) {
	rest, found := strings.CutPrefix(line, tag+" ")
	if !found || tag == "" {
		return Event{}, false, nil
	}
	if err := json.Unmarshal([]byte(rest), &ev); err != nil {
		return Event{}, true, fmt.Errorf("reading an event of imgbuild's callback plugin: %w", err)
	}
	if ev.Event == "" {
		return Event{}, true, fmt.Errorf("an event of imgbuild's callback plugin without a type: %.100s", rest)
	}
	return ev, true, nil
}

// outcome gathers what a run's events said.
type outcome struct {
	mu          sync.Mutex
	version     string
	tasks       int
	failed      []Event // not ignored
	unreachable []Event
	stats       map[string]map[string]int
	bad         error // the first event that did not parse
}

func (o *outcome) add(ev Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch ev.Event {
	case "start":
		o.version = ev.Ansible
	case "task":
		o.tasks++
	case "failed":
		if !ev.Ignored {
			o.failed = append(o.failed, ev)
		}
	case "unreachable":
		o.unreachable = append(o.unreachable, ev)
	case "stats":
		o.stats = ev.Hosts
	}
}

// taskError is a run's failed tasks, as the error of the provisioner.
type taskError struct {
	Failed      []Event
	Unreachable []Event
}

func (e *taskError) Error() string {
	var parts []string
	for _, f := range e.Failed {
		parts = append(parts, fmt.Sprintf("task %q%s failed on %s: %s", f.Task, where(f.Path), f.Host, oneMessage(f.Msg)))
	}
	for _, u := range e.Unreachable {
		parts = append(parts, fmt.Sprintf("task %q%s could not reach %s: %s", u.Task, where(u.Path), u.Host, oneMessage(u.Msg)))
	}
	return strings.Join(parts, "\n")
}

func where(p string) string {
	if p == "" {
		return ""
	}
	return " (" + p + ")"
}

// oneMessage keeps a message readable in one error: its lines indented
// under the first.
func oneMessage(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return "(Ansible gave no message)"
	}
	return strings.ReplaceAll(msg, "\n", "\n    ")
}

// errorBlock returns what ansible-playbook printed to stderr from its
// first "ERROR!" line on (a playbook that does not parse, a missing role,
// an inventory problem), as Ansible wrote it; "" if there is none.
func errorBlock(lines []string) string {
	for i, l := range lines {
		if strings.HasPrefix(l, "ERROR!") {
			block := lines[i:]
			for len(block) > 0 && strings.TrimSpace(block[len(block)-1]) == "" {
				block = block[:len(block)-1]
			}
			return strings.Join(block, "\n")
		}
	}
	return ""
}
