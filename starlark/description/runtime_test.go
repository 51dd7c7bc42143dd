package description

import (
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/value"
)

func TestRunValuesJoinFormatAndReadBackAsTheSameValue(t *testing.T) {
	d, err := load(t, map[string]string{"images.star": `
stamp = timestamp().format("YYYYMMDD-hhmm")
box(
    name = "base",
    region = "x",
    image = "base-" + timestamp(),
    tags = {
        "built": "%s" % stamp,
        "run": "run {}".format(run_id()),
        "unix": str(timestamp().unix()),
        "fixed": formatdate("YYYY", "2024-05-06T07:08:09Z"),
        "packer": formatdate("DD MMM YYYY", timestamp()),
    },
    provisioners = [step(env = {"BUILT": stamp + "Z"})],
)
`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan := engine.MakePlan(d.Graph, testRegistry(), d.Root)
	var got []string
	for _, s := range plan.Builds[0].Settings {
		got = append(got, s.Keyword+" = "+s.Value)
	}
	got = append(got, plan.Builds[0].Provisioners[0].Line)
	want := []string{
		`region = "x"`,
		`image = "base-" + (at run: timestamp)`,
		`tags = {"built": (at run: timestamp.format("YYYYMMDD-hhmm")), "run": "run " + (at run: run_id), "unix": (at run: timestamp.unix()), "fixed": "2024", "packer": (at run: timestamp.format("DD MMM YYYY"))}`,
		`step(env = {"BUILT": (at run: timestamp.format("YYYYMMDD-hhmm")) + "Z"})`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	n, _ := d.Graph.Node("base")
	if v, _ := n.Settings.Get("image"); !value.HasRun(v) {
		t.Errorf("image holds no run value: %s", value.Format(v))
	}
}

func TestRunValueMisuseSaysWhatToWrite(t *testing.T) {
	cases := map[string]string{
		`x = timestamp().format("YYYY-QQ")`:           `images.star:1:23: timestamp().format: layout "YYYY-QQ": invalid date format verb "QQ" (formatdate layouts: YYYY, MM, DD, hh, mm, ss, 'literal text'; see imgbuild docs timestamp)`,
		`x = timestamp().format("YYYY").format("MM")`: `timestamp().format: this timestamp is formatted already (timestamp.format("YYYY")); format timestamp() itself`,
		`x = formatdate("YYYY", "yesterday")`:         `formatdate: "yesterday" is not an RFC 3339 time such as "2026-01-02T15:04:05Z"`,
		`x = formatdate("YYYY", run_id())`:            `formatdate: got run_id, want timestamp() or an RFC 3339 time`,
		`x = run_id().format("YYYY")`:                 `run value has no .format field or method`,
		`x = timestamp(1)`:                            `timestamp: got 1 arguments, want 0`,
	}
	for src, want := range cases {
		_, err := load(t, map[string]string{"images.star": src + "\n"}, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error:\n%v\nwant it to contain:\n%s", src, err, want)
		}
	}
}
