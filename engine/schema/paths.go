package schema

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	"github.com/imgbuild/imgbuild/engine/value"
)

// PathValue is a path a call names through a path-tagged keyword: an input
// it reads or an output it writes.
type PathValue struct {
	// Keyword is the keyword, "export.output_directory" for one inside a
	// dict keyword.
	Keyword string
	Field   *Field
	// Paths are the paths as written (an output's {build} not replaced
	// yet): one, several for a list, one per value of a pathvars
	// placeholder.
	Paths []string
}

// Paths lists the paths settings name through the schema's path tags,
// keywords inside dict keywords included: the values set and, for outputs,
// the default when unset. A value not known until run time (another
// build's output) is left out, and so is a path the call's other keywords
// say is not a local one (pathunless, pathif).
func (s *Schema) Paths(settings *value.Map) []PathValue {
	var out []PathValue
	for _, f := range s.Fields {
		v, set := settings.Get(f.Keyword)
		if _, isNull := v.(value.Null); isNull {
			set = false
		}
		if sub := nestedSchema(f); sub != nil {
			if m := dictOf(v); set && m != nil {
				for _, pv := range sub.Paths(m) {
					pv.Keyword = f.Keyword + "." + pv.Keyword
					out = append(out, pv)
				}
			}
			continue
		}
		if f.Path == PathNone || (f.PathUnless[0] != "" && sets(settings, f.PathUnless)) || (f.PathIf[0] != "" && !sets(settings, f.PathIf)) {
			continue
		}
		var paths []string
		switch {
		case set:
			paths = strs(v)
		case f.Path.IsOutput() && f.Default != "":
			paths = []string{f.Default}
		}
		for ph, kw := range f.PathVars {
			paths = expandVar(paths, "{"+ph+"}", s.listValues(settings, kw))
		}
		paths = slices.DeleteFunc(paths, f.IsURL)
		if len(paths) > 0 {
			out = append(out, PathValue{Keyword: f.Keyword, Field: f, Paths: paths})
		}
	}
	return out
}

// nestedSchema is the schema of a dict keyword declared as a struct, or
// nil.
func nestedSchema(f *Field) *Schema {
	t := f.typ
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == durationType || reflect.PointerTo(t).Implements(decoderType) {
		return nil
	}
	return Of(f.Keyword, "", reflect.New(t).Interface())
}

// sets reports whether settings set kv[0] to the string kv[1].
func sets(settings *value.Map, kv [2]string) bool {
	v, _ := settings.Get(kv[0])
	s, ok := v.(value.String)
	return ok && s.S == kv[1]
}

// strs returns the plain strings in v, a string or a list of them.
func strs(v value.Value) []string {
	switch x := v.(type) {
	case value.String:
		return []string{x.S}
	case value.List:
		var out []string
		for _, e := range x {
			out = append(out, strs(e)...)
		}
		return out
	}
	return nil
}

// listValues returns the strings keyword kw holds, or its default.
func (s *Schema) listValues(settings *value.Map, kw string) []string {
	if v, ok := settings.Get(kw); ok {
		if _, isNull := v.(value.Null); !isNull {
			return strs(v)
		}
	}
	f, ok := s.Field(kw)
	if !ok || f.Default == "" {
		return nil
	}
	var list []string
	if json.Unmarshal([]byte(f.Default), &list) != nil {
		return []string{f.Default}
	}
	return list
}

// expandVar makes one path per value for each path holding placeholder.
func expandVar(paths []string, placeholder string, values []string) []string {
	var out []string
	for _, p := range paths {
		if !strings.Contains(p, placeholder) || len(values) == 0 {
			out = append(out, p)
			continue
		}
		for _, v := range values {
			out = append(out, strings.ReplaceAll(p, placeholder, v))
		}
	}
	return out
}
