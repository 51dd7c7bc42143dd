package cfgtool

import (
	"github.com/imgbuild/imgbuild/engine/value"
)

// Plain converts a settings value into plain Go data for encoding/json,
// as a tool is to read it: unlike value.ToJSON it keeps sensitive strings
// (they go to a file of mode 0600, never to a log). References must have
// been resolved; one left is rendered "${build.output}".
func Plain(v value.Value) any {
	switch v := v.(type) {
	case value.String:
		return v.S
	case value.Int:
		return int64(v)
	case value.Float:
		return float64(v)
	case value.Bool:
		return bool(v)
	case value.List:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = Plain(e)
		}
		return out
	case *value.Map:
		out := make(map[string]any, len(v.Keys))
		for _, k := range v.Keys {
			out[k] = Plain(v.Values[k])
		}
		return out
	case *value.Object:
		m := Plain(&v.Fields).(map[string]any)
		m["kind"] = v.Kind
		return m
	case *value.Template:
		return value.ToJSON(v)
	}
	return nil
}

// PlainMap is Plain for a dict keyword.
func PlainMap(m map[string]value.Value) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = Plain(v)
	}
	return out
}
