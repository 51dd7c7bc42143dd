package bootcmd

import (
	"context"
	"fmt"
	"time"

	"github.com/imgbuild/imgbuild/engine/retry"
)

// Press is one key pressed and released, with the modifiers held while it
// is.
type Press struct {
	Key       Key
	Modifiers Modifiers
}

// Step is what typing a boot command does in order: press keys, or wait.
type Step struct {
	Keys []Press
	Wait time.Duration
	// Text is what Keys type, for the log: the characters, and markup for
	// special keys.
	Text string
}

// Plan fills in the placeholders with vals and turns the command into
// steps: runs of key presses separated by waits. A placeholder without a
// value is an error, as is a value the keyboard cannot type.
func (c *Command) Plan(vals map[string]string) ([]Step, error) {
	var steps []Step
	var cur Step
	var held Modifiers
	flush := func() {
		if len(cur.Keys) > 0 {
			steps = append(steps, cur)
		}
		cur = Step{}
	}
	typeText := func(t string) error {
		for _, r := range t {
			k, shift, ok := KeyFor(r)
			if !ok {
				return fmt.Errorf("%s cannot be typed on a US keyboard", describeRune(r))
			}
			mods := held
			if shift {
				mods |= 1 << LeftShift
			}
			cur.Keys = append(cur.Keys, Press{Key: k, Modifiers: mods})
			cur.Text += string(r)
		}
		return nil
	}
	for _, a := range c.actions {
		switch a.kind {
		case actText:
			if err := typeText(a.text); err != nil {
				return nil, err
			}
		case actPlaceholder:
			v, ok := vals[a.placeholder]
			if !ok {
				return nil, fmt.Errorf("{%s} has no value in this build", a.placeholder)
			}
			if err := typeText(v); err != nil {
				return nil, fmt.Errorf("the value of {%s}: %w", a.placeholder, err)
			}
		case actKey:
			cur.Keys = append(cur.Keys, Press{Key: a.key, Modifiers: held})
			cur.Text += "<" + a.key.Name() + ">"
		case actModifier:
			if a.on {
				held |= 1 << a.mod
			} else {
				held &^= 1 << a.mod
			}
		case actWait:
			flush()
			steps = append(steps, Step{Wait: a.wait})
		}
	}
	flush()
	return steps, nil
}

// Keyboard types on a machine.
type Keyboard interface {
	// Press presses and releases each key in turn, its modifiers held
	// around it.
	Press(ctx context.Context, keys []Press) error
}

// TypeOptions say how Type types.
type TypeOptions struct {
	// Interval is the pause between two keys; 0 hands each run of keys
	// between waits to the keyboard at once.
	Interval time.Duration
	// Say, if set, is told what is typed.
	Say func(format string, args ...any)
}

// Type types steps on kb: it waits the waits and presses the keys, and
// returns how many keys it pressed. It stops when ctx ends.
func Type(ctx context.Context, steps []Step, kb Keyboard, opts TypeOptions) (int, error) {
	sent := 0
	for _, st := range steps {
		if st.Wait > 0 {
			if err := retry.Sleep(ctx, st.Wait); err != nil {
				return sent, err
			}
			continue
		}
		if opts.Say != nil {
			opts.Say("typing %q", st.Text)
		}
		batches := [][]Press{st.Keys}
		if opts.Interval > 0 {
			batches = batches[:0]
			for _, k := range st.Keys {
				batches = append(batches, []Press{k})
			}
		}
		for i, keys := range batches {
			if i > 0 {
				if err := retry.Sleep(ctx, opts.Interval); err != nil {
					return sent, err
				}
			}
			if err := kb.Press(ctx, keys); err != nil {
				return sent, err
			}
			sent += len(keys)
		}
	}
	return sent, nil
}
