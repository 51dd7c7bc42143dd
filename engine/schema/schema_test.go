package schema

import (
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine/value"
)

type shared struct {
	Port    int           `kw:"ssh_port" default:"22" doc:"Port."`
	Timeout time.Duration `kw:"ssh_timeout" default:"5m" doc:"Wait."`
}

type cfg struct {
	Name   string            `kw:"name,required" doc:"Name."`
	Count  int               `kw:"count" default:"2" doc:"Count."`
	Ratio  float64           `kw:"ratio" doc:"Ratio."`
	On     bool              `kw:"on" default:"true" doc:"On."`
	List   []string          `kw:"list" default:"[\"a\"]" doc:"List."`
	Tags   map[string]string `kw:"tags" doc:"Tags."`
	Secret string            `kw:"secret,sensitive" doc:"Secret."`
	Opt    *bool             `kw:"opt" doc:"Optional."`
	Nested struct {
		Size int `kw:"size,required" doc:"Size."`
	} `kw:"nested" doc:"Nested."`
	SSH shared `kw:",squash"`
}

func m(kv ...any) *value.Map {
	out := value.NewMap()
	for i := 0; i < len(kv); i += 2 {
		out.Set(kv[i].(string), kv[i+1].(value.Value))
	}
	return out
}

func TestDecodeFillsTypesAndDefaults(t *testing.T) {
	s := Of("thing", "", &cfg{})
	var c cfg
	_, err := s.Decode(m("name", value.String{S: "n"}, "ratio", value.Int(3), "list", value.String{S: "one"},
		"opt", value.Bool(false), "nested", m("size", value.Int(4)), "ssh_timeout", value.Int(90)), &c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "n" || c.Count != 2 || c.Ratio != 3 || !c.On || len(c.List) != 1 || c.List[0] != "one" ||
		c.Opt == nil || *c.Opt || c.Nested.Size != 4 || c.SSH.Port != 22 || c.SSH.Timeout != 90*time.Second {
		t.Errorf("decoded %+v", c)
	}
}

func TestDecodeErrorsNameTheKeyword(t *testing.T) {
	s := Of("thing", "", &cfg{})
	cases := []struct {
		in   *value.Map
		want string
	}{
		{m("count", value.Int(1)), `missing required keyword argument "name"`},
		{m("name", value.String{S: "n"}, "cuont", value.Int(1)), `unexpected keyword argument "cuont" (did you mean "count"?)`},
		{m("name", value.String{S: "n"}, "count", value.String{S: "2"}), `for parameter count: got string, want int`},
		{m("name", value.String{S: "n"}, "ssh_timeout", value.String{S: "soon"}), `for parameter ssh_timeout: "soon" is not a duration (write it like "90s", "5m" or "1h30m")`},
		{m("name", value.String{S: "n"}, "nested", m()), `for parameter nested: missing required keyword argument "size"`},
		{m("name", value.String{S: "n"}, "list", value.List{value.Int(1)}), `for parameter list: element 0: got int, want string`},
		{m("name", &value.Template{Parts: []value.Part{{Ref: &value.Ref{Build: "b", Output: "id"}}}}), `for parameter name: reference to b.id was not resolved`},
	}
	for _, c := range cases {
		var out cfg
		_, err := s.Decode(c.in, &out, Options{})
		if err == nil || err.Error() != c.want {
			t.Errorf("error = %v\nwant    %s", err, c.want)
		}
	}
}

func TestDeferredReferencesAreRecorded(t *testing.T) {
	s := Of("thing", "", &cfg{})
	var c cfg
	d, err := s.Decode(m("name", &value.Template{Parts: []value.Part{{Lit: "x-"}, {Ref: &value.Ref{Build: "b", Output: "id"}}}}), &c, Options{Deferred: true})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Has("name") || c.Name != "x-${b.id}" {
		t.Errorf("deferred %v, name %q", d, c.Name)
	}
}

func TestDocsComeFromTheDeclaration(t *testing.T) {
	doc := Of("thing", "Makes a thing.", &cfg{}).Docs()
	for _, want := range []string{"thing(...)", "Makes a thing.", "name (string, required)", "ssh_timeout (duration, default 5m)", "secret (string, sensitive)", "list (list of string, default [\"a\"])"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs lack %q:\n%s", want, doc)
		}
	}
}

type isoCfg struct {
	ISOURL  string   `kw:"iso_url" path:"file" pathurl:"http|https" doc:"A file or a download."`
	ISOURLs []string `kw:"iso_urls" path:"file" pathurl:"http|https" doc:"Files or downloads."`
}

func TestURLsAPathKeywordTakesAreNotPaths(t *testing.T) {
	s := Of("iso", "", &isoCfg{})
	settings := m("iso_url", value.String{S: "HTTPS://mirror/debian.iso"},
		"iso_urls", value.List{value.String{S: "local.iso"}, value.String{S: "http://mirror/x.iso"}, value.String{S: "ftp://mirror/x.iso"}})
	var got []string
	for _, pv := range s.Paths(settings) {
		got = append(got, pv.Keyword+"="+strings.Join(pv.Paths, ","))
	}
	if strings.Join(got, " ") != "iso_urls=local.iso,ftp://mirror/x.iso" {
		t.Errorf("paths: %v", got)
	}
	f, _ := s.Field("iso_url")
	if !f.IsURL("https://x/y") || f.IsURL("x/y.iso") || f.IsURL("file:///x") {
		t.Error("IsURL")
	}
}
