package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// packConfig is a fixture post-processor that adds an output named by
// its kind, as ova() adds ova.
type packConfig struct {
	Kind string `kw:"kind" default:"tar" enum:"tar|zip" doc:"What it makes."`
	Keep bool   `kw:"keep" default:"True" doc:"Pass on the input's fields."`
}

// postRegistry is taskRegistry with pack(), which makes "pack" and
// "pack_<kind>", and drop(), which passes on nothing of its input.
func postRegistry(rec *recorder) *engine.Registry {
	reg := taskRegistry(rec)
	reg.AddPostProcessor(&engine.PostProcessorDef{
		Schema: schema.Of("pack", "A fixture post-processor with outputs.", &packConfig{}),
		Outputs: []engine.Output{
			{Name: "pack", Doc: "What it made."},
			{Name: "pack_tar", Doc: "The tar."},
			{Name: "pack_zip", Doc: "The zip."},
		},
		Provides: func(settings *value.Map) []string {
			kind := "tar"
			if v, ok := settings.Get("kind"); ok {
				kind = v.(value.String).S
			}
			return []string{"pack", "pack_" + kind}
		},
		New: func(config any) (engine.PostProcessor, error) {
			cfg := config.(*packConfig)
			return postFunc(func(_ context.Context, env *engine.PostEnv, in *engine.Artifact) (*engine.Artifact, error) {
				out := &engine.Artifact{ID: in.ID, Fields: map[string]any{}}
				if cfg.Keep {
					for k, v := range in.Fields {
						out.Fields[k] = v
					}
				}
				file := env.Build + "." + cfg.Kind
				out.Fields["pack"], out.Fields["pack_"+cfg.Kind] = file, file
				return out, nil
			}), nil
		},
	})
	return reg
}

func packed(name, kind string, keep bool) *engine.Node {
	n := node(name, map[string]value.Value{"input": value.String{S: "v"}})
	f := value.NewMap()
	f.Set("kind", value.String{S: kind})
	f.Set("keep", value.Bool(keep))
	n.PostProcessors = append(n.PostProcessors, &value.Object{Kind: "pack", Pos: "t.star:2:1", Fields: *f})
	return n
}

func TestPostProcessorOutputsAreKeptAndReachOtherBuilds(t *testing.T) {
	rec := &recorder{}
	reg := postRegistry(rec)
	img := packed("img", "tar", true)
	// The zip step passes on none of its input's fields: the tar's output
	// must survive it all the same.
	zip := packed("img", "zip", false)
	img.PostProcessors = append(img.PostProcessors, zip.PostProcessors...)
	user := node("user", map[string]value.Value{"input": &value.Template{Parts: []value.Part{
		{Ref: &value.Ref{Build: "img", Output: "pack_tar"}}, {Lit: " "}, {Ref: &value.Ref{Build: "img", Output: "pack_zip"}},
	}}})
	sum := engine.Run(context.Background(), graph(t, reg, img, user), reg, event.NewBus(), engine.RunOptions{})
	if !sum.OK() {
		t.Fatalf("run failed: %v %v", sum.Result("img").Err, sum.Result("user").Err)
	}
	if got := sum.Result("user").Artifact.Fields["value"]; got != "img.tar img.zip" {
		t.Errorf("user's input resolved to %q, want the tar's and the zip's outputs", got)
	}
}

func TestAReferenceToAnOutputTwoPostProcessorsMakeNamesTheOnesMadeOnce(t *testing.T) {
	reg := postRegistry(&recorder{})
	img := packed("img", "tar", true)
	img.PostProcessors = append(img.PostProcessors, packed("x", "zip", true).PostProcessors...)
	user := node("user", map[string]value.Value{"input": &value.Template{Parts: []value.Part{{Ref: &value.Ref{Build: "img", Output: "pack"}}}}})
	g := engine.NewGraph()
	for _, n := range []*engine.Node{img, user} {
		if err := g.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	err := g.Check(reg)
	want := `build "user" refers to img.pack, but build "img" has output "pack" 2 times (pack at t.star:2:1; pack at t.star:2:1): refer to one made once, such as pack_tar or pack_zip`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %q", err, want)
	}
	// An output the post-processor does not make with these settings is
	// not there.
	if err := reg.OutputsOf(packed("one", "tar", true)).Check("pack_zip"); err == nil || !strings.Contains(err.Error(), `task build "one" has no output "pack_zip" (it has id, files, name, value, pack, pack_tar)`) {
		t.Errorf("got %v", err)
	}
}
