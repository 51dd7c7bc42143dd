package value

import (
	"strings"
	"testing"
)

func ref(b, o string) *Ref { return &Ref{Build: b, Output: o} }

func TestResolveJoinsTemplatesAndKeepsSensitivity(t *testing.T) {
	v := NewMap()
	v.Set("ami", &Template{Parts: []Part{{Lit: "web-"}, {Ref: ref("base", "image_id")}, {Lit: "-x"}}})
	v.Set("files", &Template{Parts: []Part{{Ref: ref("base", "files")}}})
	v.Set("auth", &Template{Parts: []Part{{Lit: "tok", Sensitive: true}, {Ref: ref("base", "id")}}})
	got, err := Resolve(v, func(r Ref) (Value, error) {
		switch r.Output {
		case "files":
			return List{String{S: "a"}, String{S: "b"}}, nil
		}
		return String{S: "ami-1"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := got.(*Map)
	if s := m.Values["ami"].(String); s.S != "web-ami-1-x" || s.Sensitive {
		t.Errorf("ami = %+v", s)
	}
	if l := m.Values["files"].(List); len(l) != 2 {
		t.Errorf("a sole reference to a list output should resolve to the list, got %v", l)
	}
	if s := m.Values["auth"].(String); !s.Sensitive {
		t.Error("a template with a secret part must stay sensitive")
	}
}

func TestResolveRefusesToJoinAListIntoAString(t *testing.T) {
	_, err := Resolve(&Template{Parts: []Part{{Lit: "x"}, {Ref: ref("base", "files")}}}, func(Ref) (Value, error) {
		return List{}, nil
	})
	if err == nil || err.Error() != "output base.files is a list and cannot be joined into a string" {
		t.Errorf("err = %v", err)
	}
}

func TestFormatHidesSecretsAndShowsRefs(t *testing.T) {
	m := NewMap()
	m.Set("a", String{S: "hunter2", Sensitive: true})
	m.Set("b", &Template{Parts: []Part{{Lit: "p-"}, {Ref: ref("base", "id")}, {Lit: "pw", Sensitive: true}}})
	m.Set("c", List{Int(1), Bool(true), Null{}, Float(1.5)})
	got := Format(m)
	want := `{"a": (sensitive), "b": "p-" + base.id + (sensitive), "c": [1, True, None, 1.5]}`
	if got != want {
		t.Errorf("Format = %s\nwant     %s", got, want)
	}
	if strings.Contains(Format(m), "hunter2") || strings.Contains(Format(m), "pw") {
		t.Error("a secret leaked")
	}
	var secrets []string
	Secrets(m, func(s string) { secrets = append(secrets, s) })
	if strings.Join(secrets, ",") != "hunter2,pw" {
		t.Errorf("Secrets = %v", secrets)
	}
}

func TestWalkNamesThePathToEachRef(t *testing.T) {
	m := NewMap()
	env := NewMap()
	env.Set("BASE", &Template{Parts: []Part{{Ref: ref("base", "id")}}})
	m.Set("env", env)
	m.Set("list", List{String{S: "x"}, &Template{Parts: []Part{{Ref: ref("other", "files")}}}})
	var got []string
	Walk("", m, func(f FoundRef) { got = append(got, f.Path+" ← "+f.Ref.String()) })
	if strings.Join(got, "; ") != "env.BASE ← base.id; list[1] ← other.files" {
		t.Errorf("Walk = %v", got)
	}
}
