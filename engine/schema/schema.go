// Package schema turns a driver's config struct into the single declaration
// of its options. Each exported field carries its Starlark keyword, whether
// it is required, its default and one line of documentation:
//
//	type Config struct {
//		Region  string        `kw:"region,required" doc:"AWS region to build in."`
//		Timeout time.Duration `kw:"ssh_timeout" default:"5m" doc:"How long to wait for SSH."`
//		SSH     ssh.Options   `kw:",squash"` // shared options, declared once
//	}
//
// The kw tag's options are: required, sensitive (never shown), squash (the
// nested struct's keywords are this struct's own). Further tags: default (a
// literal for scalars, JSON for lists and dicts), doc, enum ("a|b|c"), and
// path: "file", "dir" or "any" for an input, a workspace path that must
// exist when the description is evaluated; "output" for a file or
// directory the build writes, relative to the workspace, which must stay
// inside it and not touch the description, .imgbuild/ or any build's
// inputs, and which no other build may write; "output-shared" for a file
// several builds record into (a manifest), which only outputs of the same
// kind may share. An output path may hold {build} and {driver}; pathvars
// names a list keyword whose values another placeholder takes, one output
// each: pathvars:"type=checksum_types" makes "{build}.{type}sum" one file
// per checksum type.
//
// From that one declaration come the builtin's keyword checking (Decode),
// its validation, the reference (Docs) and the plan. The package knows
// nothing of Starlark or of any platform.
//
// A path check may depend on another keyword: pathunless:"direction=download"
// skips it when the call sets direction to "download" (the path then names
// a file on the machine, not here), and pathif:"direction=download" makes
// it only then. A path keyword that also takes URLs names their schemes:
// pathurl:"http|https" leaves "https://..." alone (iso_url: a file in the
// workspace, or a download). Paths must lie inside the workspace,
// except with pathscope:"machine": credentials such as SSH keys, which are
// read when the build runs and usually live in ~/.ssh, may be anywhere on
// this machine ("~/" is the user's home).
//
// schema.go is over 500 lines: reading a config struct's tags into fields
// and decoding values into it share one walk over the fields, kept in one
// file.
package schema

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine/value"
)

// PathKind says what a path-valued keyword must name.
type PathKind string

// Path kinds for the path tag.
const (
	PathNone PathKind = ""
	PathFile PathKind = "file"
	PathDir  PathKind = "dir"
	PathAny  PathKind = "any"
	// PathOutput is a file or directory the build writes.
	PathOutput PathKind = "output"
	// PathSharedOutput is a file several builds record into.
	PathSharedOutput PathKind = "output-shared"
)

// IsOutput reports whether the kind is one of the output kinds.
func (k PathKind) IsOutput() bool { return k == PathOutput || k == PathSharedOutput }

// Field is one keyword of a schema.
type Field struct {
	Keyword   string
	Doc       string
	Default   string // as written in the tag; "" means none
	Required  bool
	Sensitive bool
	Enum      []string
	Path      PathKind
	// PathUnless, if set, names a keyword and value under which the path
	// is not checked: {"direction", "download"}.
	PathUnless [2]string
	// PathIf, if set, names a keyword and value under which alone the
	// path is checked.
	PathIf [2]string
	// PathVars maps an output path's placeholder to the list keyword whose
	// values it takes: {"type": "checksum_types"}.
	PathVars map[string]string
	// PathAnywhere allows a path outside the workspace (pathscope:"machine").
	PathAnywhere bool
	// PathURLs are the URL schemes the keyword takes instead of a path
	// (pathurl:"http|https"): such a value is not a path.
	PathURLs []string
	TypeName string // as a user would say it: "string", "list of string"

	index []int
	typ   reflect.Type
}

// IsURL reports whether s is a URL the field takes instead of a path (one
// of its pathurl schemes), not a path to check.
func (f *Field) IsURL(s string) bool {
	scheme, _, ok := strings.Cut(s, "://")
	return ok && slices.Contains(f.PathURLs, strings.ToLower(scheme))
}

// Schema is the set of keywords one builtin accepts.
type Schema struct {
	Name   string // the builtin's name: "amazon_ebs", "shell"
	Doc    string // one paragraph
	Fields []*Field

	typ    reflect.Type
	byName map[string]*Field
}

// Decoder is implemented by config types that decode themselves from a
// value (a lookup object such as aws_ami(...), say).
type Decoder interface {
	DecodeValue(v value.Value) error
}

// Validator is implemented by configs that check more than types: Validate
// runs after decoding; deferred holds the keywords whose values are not known
// until run time (they refer to other builds' outputs). Return a
// *FieldError to point at one keyword.
type Validator interface {
	Validate(deferred Deferred) error
}

// Deferred is the set of keywords whose values come from other builds.
type Deferred map[string]bool

// Has reports whether the keyword's value is not known until run time.
func (d Deferred) Has(kw string) bool { return d[kw] }

// FieldError is an error about one keyword's value.
type FieldError struct {
	Keyword string
	Msg     string
}

func (e *FieldError) Error() string { return "for parameter " + e.Keyword + ": " + e.Msg }

// Errorf returns a *FieldError for keyword kw.
func Errorf(kw, format string, args ...any) error {
	return &FieldError{Keyword: kw, Msg: fmt.Sprintf(format, args...)}
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	valueType    = reflect.TypeOf((*value.Value)(nil)).Elem()
	decoderType  = reflect.TypeOf((*Decoder)(nil)).Elem()
)

// Of builds the schema of config, a struct or a pointer to one. It panics on
// a malformed declaration: that is a programming error caught by any test.
func Of(name, doc string, config any) *Schema {
	t := reflect.TypeOf(config)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s := &Schema{Name: name, Doc: doc, typ: t, byName: map[string]*Field{}}
	s.collect(t, nil)
	return s
}

func (s *Schema) collect(t reflect.Type, index []int) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("kw")
		if !ok || !sf.IsExported() {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		name, opts, _ := strings.Cut(tag, ",")
		if hasOpt(opts, "squash") {
			s.collect(sf.Type, idx)
			continue
		}
		f := &Field{
			Keyword:   name,
			Doc:       sf.Tag.Get("doc"),
			Default:   sf.Tag.Get("default"),
			Required:  hasOpt(opts, "required"),
			Sensitive: hasOpt(opts, "sensitive"),
			Path:      PathKind(sf.Tag.Get("path")),
			TypeName:  typeName(sf.Type),
			index:     idx,
			typ:       sf.Type,
		}
		switch scope := sf.Tag.Get("pathscope"); scope {
		case "", "workspace":
		case "machine":
			f.PathAnywhere = true
		default:
			panic(fmt.Sprintf("schema %s: pathscope of %s must be workspace or machine, not %q", s.Name, name, scope))
		}
		switch f.Path {
		case PathNone, PathFile, PathDir, PathAny, PathOutput, PathSharedOutput:
		default:
			panic(fmt.Sprintf("schema %s: path of %s must be file, dir, any, output or output-shared, not %q", s.Name, name, f.Path))
		}
		for tag, dst := range map[string]*[2]string{"pathunless": &f.PathUnless, "pathif": &f.PathIf} {
			if pu := sf.Tag.Get(tag); pu != "" {
				k, v, ok := strings.Cut(pu, "=")
				if !ok {
					panic(fmt.Sprintf("schema %s: %s of %s must read keyword=value", s.Name, tag, name))
				}
				*dst = [2]string{k, v}
			}
		}
		if pv := sf.Tag.Get("pathvars"); pv != "" {
			f.PathVars = map[string]string{}
			for _, kv := range strings.Split(pv, ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					panic(fmt.Sprintf("schema %s: pathvars of %s must read placeholder=keyword", s.Name, name))
				}
				f.PathVars[k] = v
			}
		}
		if pu := sf.Tag.Get("pathurl"); pu != "" {
			if f.Path == PathNone || f.Path.IsOutput() {
				panic(fmt.Sprintf("schema %s: pathurl of %s needs an input path tag", s.Name, name))
			}
			f.PathURLs = strings.Split(pu, "|")
		}
		if e := sf.Tag.Get("enum"); e != "" {
			f.Enum = strings.Split(e, "|")
		}
		if _, dup := s.byName[name]; dup {
			panic(fmt.Sprintf("schema %s: keyword %q declared twice", s.Name, name))
		}
		if f.Default != "" {
			if err := decodeDefault(f, reflect.New(f.typ).Elem()); err != nil {
				panic(fmt.Sprintf("schema %s: default of %s: %v", s.Name, name, err))
			}
		}
		s.Fields = append(s.Fields, f)
		s.byName[name] = f
	}
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// Field returns the field for a keyword.
func (s *Schema) Field(kw string) (*Field, bool) {
	f, ok := s.byName[kw]
	return f, ok
}

// Keywords returns every keyword, in declaration order.
func (s *Schema) Keywords() []string {
	out := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = f.Keyword
	}
	return out
}

// New returns a pointer to a fresh zero config of the schema's type.
func (s *Schema) New() any { return reflect.New(s.typ).Interface() }

// UnknownKeyword returns the error for a keyword the schema lacks, with the
// nearest valid keyword as a suggestion.
func (s *Schema) UnknownKeyword(kw string) error {
	msg := fmt.Sprintf("unexpected keyword argument %q", kw)
	if near := Nearest(kw, s.Keywords()); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	return fmt.Errorf("%s", msg)
}

// Options control Decode.
type Options struct {
	// Deferred accepts references to outputs not yet known: string fields
	// receive a "${build.output}" placeholder, others stay zero, and the
	// keyword is recorded in the returned Deferred set. Without it, a
	// reference is an error (they must have been resolved first).
	Deferred bool
}

// Decode fills out (a pointer to the schema's struct) from settings: unknown
// keywords, wrong types, values outside an enum and missing required
// keywords are errors naming the keyword. Defaults fill what is not set.
// Then, if the config is a Validator, it is validated.
func (s *Schema) Decode(settings *value.Map, out any, opts Options) (Deferred, error) {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.Elem().Type() != s.typ {
		return nil, fmt.Errorf("schema %s: Decode wants *%s, got %T", s.Name, s.typ, out)
	}
	rv = rv.Elem()
	deferred := Deferred{}
	if settings != nil {
		for _, kw := range settings.Keys {
			if _, ok := s.byName[kw]; !ok {
				return nil, s.UnknownKeyword(kw)
			}
		}
	}
	for _, f := range s.Fields {
		fv := rv.FieldByIndex(f.index)
		v, set := settings.Get(f.Keyword)
		if set {
			if _, isNull := v.(value.Null); isNull {
				set = false
			}
		}
		if !set {
			if f.Required {
				return nil, fmt.Errorf("missing required keyword argument %q", f.Keyword)
			}
			if f.Default != "" {
				if err := decodeDefault(f, fv); err != nil {
					return nil, Errorf(f.Keyword, "default: %v", err)
				}
			}
			continue
		}
		d := &decoder{deferredOK: opts.Deferred}
		if err := d.decode(v, fv); err != nil {
			return nil, &FieldError{Keyword: f.Keyword, Msg: err.Error()}
		}
		if d.deferred {
			deferred[f.Keyword] = true
		}
		if len(f.Enum) > 0 && fv.Kind() == reflect.String && !d.deferred {
			if !slices.Contains(f.Enum, fv.String()) {
				msg := fmt.Sprintf("%q is not one of %s", fv.String(), quoteList(f.Enum))
				if near := Nearest(fv.String(), f.Enum); near != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", near)
				}
				return nil, Errorf(f.Keyword, "%s", msg)
			}
		}
	}
	if val, ok := out.(Validator); ok {
		if err := val.Validate(deferred); err != nil {
			return deferred, err
		}
	}
	return deferred, nil
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func decodeDefault(f *Field, fv reflect.Value) error {
	switch {
	case fv.Type() == durationType:
		d, err := time.ParseDuration(f.Default)
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
		return nil
	case fv.Kind() == reflect.String:
		fv.SetString(f.Default)
		return nil
	case fv.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(f.Default)
		if err != nil {
			return err
		}
		fv.SetBool(b)
		return nil
	case fv.Kind() >= reflect.Int && fv.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(f.Default, 10, 64)
		if err != nil {
			return err
		}
		fv.SetInt(n)
		return nil
	case fv.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(f.Default, 64)
		if err != nil {
			return err
		}
		fv.SetFloat(x)
		return nil
	}
	return json.Unmarshal([]byte(f.Default), fv.Addr().Interface())
}

type decoder struct {
	deferredOK bool
	deferred   bool
}

func (d *decoder) decode(v value.Value, fv reflect.Value) error {
	if fv.CanAddr() && fv.Addr().Type().Implements(decoderType) {
		if t, ok := v.(*value.Template); ok && d.deferredOK {
			_ = t
			d.deferred = true
			return nil
		}
		return fv.Addr().Interface().(Decoder).DecodeValue(v)
	}
	if fv.Type() == valueType {
		if _, ok := v.(*value.Template); ok {
			d.deferred = true
		}
		fv.Set(reflect.ValueOf(&v).Elem())
		return nil
	}
	if t, ok := v.(*value.Template); ok {
		if !d.deferredOK {
			return fmt.Errorf("reference to %s was not resolved", value.Format(t))
		}
		d.deferred = true
		if fv.Kind() == reflect.String {
			fv.SetString(value.ToJSON(t).(string))
		}
		return nil
	}
	if fv.Kind() == reflect.Pointer {
		p := reflect.New(fv.Type().Elem())
		if err := d.decode(v, p.Elem()); err != nil {
			return err
		}
		fv.Set(p)
		return nil
	}
	want := typeName(fv.Type())
	bad := func() error { return fmt.Errorf("got %s, want %s", v.Type(), want) }
	switch {
	case fv.Type() == durationType:
		switch x := v.(type) {
		case value.String:
			dur, err := time.ParseDuration(x.S)
			if err != nil {
				return fmt.Errorf("%q is not a duration (write it like \"90s\", \"5m\" or \"1h30m\")", x.S)
			}
			if dur < 0 {
				return fmt.Errorf("%q is negative", x.S)
			}
			fv.SetInt(int64(dur))
		case value.Int:
			if x < 0 {
				return fmt.Errorf("%d is negative", x)
			}
			fv.SetInt(int64(x) * int64(time.Second))
		default:
			return bad()
		}
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		s, ok := v.(value.String)
		if !ok {
			return bad()
		}
		fv.SetString(s.S)
	case reflect.Bool:
		b, ok := v.(value.Bool)
		if !ok {
			return bad()
		}
		fv.SetBool(bool(b))
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, ok := v.(value.Int)
		if !ok {
			return bad()
		}
		if fv.OverflowInt(int64(n)) {
			return fmt.Errorf("%d is out of range", n)
		}
		fv.SetInt(int64(n))
	case reflect.Float64:
		switch x := v.(type) {
		case value.Float:
			fv.SetFloat(float64(x))
		case value.Int:
			fv.SetFloat(float64(x))
		default:
			return bad()
		}
	case reflect.Slice:
		list, ok := v.(value.List)
		if !ok {
			// A single string where a list of strings is wanted is
			// accepted: inline = "echo hi" reads as ["echo hi"].
			if s, isStr := v.(value.String); isStr && fv.Type().Elem().Kind() == reflect.String {
				list = value.List{s}
			} else {
				return bad()
			}
		}
		out := reflect.MakeSlice(fv.Type(), len(list), len(list))
		for i, e := range list {
			if err := d.decode(e, out.Index(i)); err != nil {
				return fmt.Errorf("element %d: %v", i, err)
			}
		}
		fv.Set(out)
	case reflect.Map:
		m, ok := v.(*value.Map)
		if !ok {
			return bad()
		}
		if fv.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("schema: map keys must be strings")
		}
		out := reflect.MakeMapWithSize(fv.Type(), m.Len())
		for _, k := range m.Keys {
			ev := reflect.New(fv.Type().Elem()).Elem()
			if err := d.decode(m.Values[k], ev); err != nil {
				return fmt.Errorf("key %q: %v", k, err)
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(fv.Type().Key()), ev)
		}
		fv.Set(out)
	case reflect.Struct:
		m := dictOf(v)
		if m == nil {
			return bad()
		}
		sub := Of(typeName(fv.Type()), "", fv.Addr().Interface())
		def, err := sub.Decode(m, fv.Addr().Interface(), Options{Deferred: d.deferredOK})
		if err != nil {
			return err
		}
		if len(def) > 0 {
			d.deferred = true
		}
	default:
		return fmt.Errorf("schema: unsupported Go type %s", fv.Type())
	}
	return nil
}

// dictOf returns the keywords of a dict or of an object (a driver's
// nested block), else nil.
func dictOf(v value.Value) *value.Map {
	switch x := v.(type) {
	case *value.Map:
		return x
	case *value.Object:
		return &x.Fields
	}
	return nil
}

func typeName(t reflect.Type) string {
	if t == durationType {
		return "duration"
	}
	if t == valueType {
		return "any"
	}
	if reflect.PointerTo(t).Implements(decoderType) {
		if n, ok := reflect.New(t).Interface().(interface{ TypeName() string }); ok {
			return n.TypeName()
		}
		return strings.ToLower(t.Name())
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "int"
	case reflect.Float64:
		return "float"
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "dict of " + typeName(t.Elem())
	case reflect.Struct:
		return "dict"
	}
	return t.String()
}

// Docs renders the schema as reference text: the builtin's doc, then one
// line per keyword with its type, required or default, and doc.
func (s *Schema) Docs() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s(...)\n", s.Name)
	if s.Doc != "" {
		fmt.Fprintf(&b, "  %s\n", s.Doc)
	}
	b.WriteString("\n")
	fields := append([]*Field(nil), s.Fields...)
	sort.SliceStable(fields, func(i, j int) bool { return fields[i].Required && !fields[j].Required })
	for _, f := range fields {
		var attrs []string
		attrs = append(attrs, f.TypeName)
		switch {
		case f.Required:
			attrs = append(attrs, "required")
		case f.Default != "" && f.TypeName == "string":
			attrs = append(attrs, "default "+strconv.Quote(f.Default))
		case f.Default != "":
			attrs = append(attrs, "default "+f.Default)
		}
		if len(f.Enum) > 0 {
			attrs = append(attrs, "one of "+strings.Join(f.Enum, "|"))
		}
		if f.Sensitive {
			attrs = append(attrs, "sensitive")
		}
		fmt.Fprintf(&b, "  %-34s %s\n", f.Keyword+" ("+strings.Join(attrs, ", ")+")", f.Doc)
	}
	return b.String()
}

// Get returns the value a decoded config (a pointer to the schema's
// struct) holds for keyword kw, and whether the schema has kw.
func (s *Schema) Get(config any, kw string) (any, bool) {
	f, ok := s.byName[kw]
	if !ok {
		return nil, false
	}
	v := reflect.ValueOf(config)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, false
		}
		v = v.Elem()
	}
	if v.Type() != s.typ {
		return nil, false
	}
	return v.FieldByIndex(f.index).Interface(), true
}
