package importer

import (
	"fmt"
	"strings"

	"github.com/bazelbuild/buildtools/build"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// sources converts the build blocks: one builder call per source each
// names, with its provisioners and post-processors.
func (c *converter) sources(sources, builds []*hclsyntax.Block) {
	byLabel := map[string]*hclsyntax.Block{}
	for _, b := range sources {
		if len(b.Labels) != 2 {
			c.comments(c.todo(b.Range(), "a source block needs a type and a name"))
			continue
		}
		byLabel[b.Labels[0]+"."+b.Labels[1]] = b
	}
	for _, b := range builds {
		c.build(b, byLabel)
	}
}

func (c *converter) build(b *hclsyntax.Block, byLabel map[string]*hclsyntax.Block) {
	buildName := ""
	var todos []build.Comment
	if a := b.Body.Attributes["name"]; a != nil {
		if v, diags := a.Expr.Value(nil); !diags.HasErrors() && v.Type().FriendlyName() == "string" {
			buildName = v.AsString()
		}
	}
	var refs []*sourceRef
	add := func(label string, r hcl.Range, override *hclsyntax.Block) {
		label = strings.TrimPrefix(label, "source.")
		src, ok := byLabel[label]
		if !ok {
			todos = append(todos, c.todo(r, fmt.Sprintf("the build names the source %q, which is not defined", label))...)
			return
		}
		ref := &sourceRef{typ: src.Labels[0], name: src.Labels[1], buildName: buildName, block: src, override: override}
		if override != nil {
			if a := override.Body.Attributes["name"]; a != nil {
				if v, diags := a.Expr.Value(nil); !diags.HasErrors() {
					ref.name = v.AsString()
				}
			}
		}
		ref.label = ref.typ + "." + ref.name
		ref.full = ref.label
		if c.legacy {
			ref.full = ref.name
		} else if buildName != "" {
			ref.full = buildName + "." + ref.label
		}
		refs = append(refs, ref)
	}
	if a := b.Body.Attributes["sources"]; a != nil {
		tuple, ok := a.Expr.(*hclsyntax.TupleConsExpr)
		if !ok {
			todos = append(todos, c.todo(a.SrcRange, "sources must be a list")...)
		} else {
			for _, e := range tuple.Exprs {
				label := ""
				switch e := e.(type) {
				case *hclsyntax.ScopeTraversalExpr:
					label = traversalText(e.Traversal)
				default:
					if v, diags := e.Value(nil); !diags.HasErrors() && v.Type().FriendlyName() == "string" {
						label = v.AsString()
					}
				}
				add(label, e.Range(), nil)
			}
		}
	}
	var provs, cleanups, posts []*hclsyntax.Block
	for _, blk := range b.Body.Blocks {
		switch blk.Type {
		case "source":
			if len(blk.Labels) == 1 {
				add(blk.Labels[0], blk.Range(), blk)
			} else {
				todos = append(todos, c.todo(blk.Range(), "a source block in a build names one source")...)
			}
		case "provisioner":
			provs = append(provs, blk)
		case "error-cleanup-provisioner":
			// Packer takes one per build block and refuses a second.
			if len(cleanups) > 0 {
				todos = append(todos, c.todo(blk.Range(), "Packer allows one error-cleanup-provisioner per build block; this second one is not mapped")...)
				continue
			}
			cleanups = append(cleanups, blk)
		case "post-processor":
			posts = append(posts, blk)
		case "post-processors":
			// A chain: each gets the previous one's artifact, as imgbuild's
			// post list does.
			for _, inner := range blk.Body.Blocks {
				if inner.Type == "post-processor" {
					posts = append(posts, inner)
				} else {
					todos = append(todos, c.todo(inner.Range(), fmt.Sprintf("a %s block in post-processors is not mapped", inner.Type))...)
				}
			}
		default:
			todos = append(todos, c.todo(blk.Range(), fmt.Sprintf("the %q block in a build is not mapped", blk.Type))...)
		}
	}
	for _, a := range sortedAttrs(b.Body) {
		switch a.Name {
		case "name", "sources":
		case "description":
			todos = append(todos, note("description: %s", strings.TrimSpace(c.text(a.Expr.Range()))))
		default:
			todos = append(todos, c.todo(a.SrcRange, fmt.Sprintf("%s in a build block is not mapped", a.Name))...)
		}
	}
	c.comments(todos)

	// Each source's lists; one shared variable when they are all alike.
	type made struct {
		ref                  *sourceRef
		call                 *build.CallExpr
		provs, cleanup, post *build.ListExpr
	}
	var all []made
	for _, ref := range refs {
		p := pluginFor(ref.typ, builderKind)
		if p == nil || c.opts.Builtins[p.builtin] == nil {
			c.comments(c.todo(ref.block.Range(), fmt.Sprintf("the builder %q has no imgbuild equivalent", ref.typ)))
			continue
		}
		s := &scope{c: c, iter: map[string][2]string{}, src: ref}
		m := made{ref: ref, call: c.builderCall(s, p, ref)}
		m.provs = c.steps(s, provs, provisionerKind)
		m.cleanup = c.steps(s, cleanups, provisionerKind)
		m.post = c.steps(s, posts, postProcessorKind)
		all = append(all, m)
	}
	shared := func(pick func(m made) *build.ListExpr, suffix string) build.Expr {
		if len(all) < 2 {
			return nil
		}
		first := format(pick(all[0]))
		for _, m := range all[1:] {
			if format(pick(m)) != first {
				return nil
			}
		}
		if len(pick(all[0]).List) == 0 {
			return nil
		}
		prefix := buildName
		if prefix == "" {
			prefix = "build"
		}
		name := c.name(prefix + "_" + suffix)
		c.emit(&build.AssignExpr{LHS: ident(name), Op: "=", RHS: pick(all[0])})
		return ident(name)
	}
	// Each list in the order the builder call takes them; Packer's
	// error-cleanup-provisioner is imgbuild's error_cleanup, which runs
	// when a provisioner fails, as Packer's does.
	lists := []struct {
		keyword, suffix string
		pick            func(m made) *build.ListExpr
	}{
		{"provisioners", "provisioners", func(m made) *build.ListExpr { return m.provs }},
		{"error_cleanup", "error_cleanup", func(m made) *build.ListExpr { return m.cleanup }},
		{"post", "post", func(m made) *build.ListExpr { return m.post }},
	}
	sharedLists := make([]build.Expr, len(lists))
	for i, l := range lists {
		sharedLists[i] = shared(l.pick, l.suffix)
	}
	for _, m := range all {
		for i, l := range lists {
			if sharedLists[i] != nil {
				m.call.List = append(m.call.List, kwarg(l.keyword, sharedLists[i]))
			} else if own := l.pick(m); len(own.List) > 0 || len(own.End.Before) > 0 {
				m.call.List = append(m.call.List, kwarg(l.keyword, own))
			}
		}
		c.builds = append(c.builds, m.ref.full)
		c.emit(m.call)
	}
}

func format(x build.Expr) string {
	return string(build.FormatWithoutRewriting(&build.File{Type: build.TypeDefault, Stmt: []build.Expr{x}}))
}

// builderCall converts a source (with the build's overrides) into a
// builder call.
func (c *converter) builderCall(s *scope, p *plugin, ref *sourceRef) *build.CallExpr {
	body := ref.block.Body
	merged := &hclsyntax.Body{Attributes: hclsyntax.Attributes{}, SrcRange: body.SrcRange}
	for k, a := range body.Attributes {
		merged.Attributes[k] = a
	}
	merged.Blocks = append(merged.Blocks, body.Blocks...)
	if ref.override != nil {
		for k, a := range ref.override.Body.Attributes {
			if k != "name" {
				merged.Attributes[k] = a
			}
		}
		merged.Blocks = append(merged.Blocks, ref.override.Body.Blocks...)
	}
	args := []build.Expr{kwarg("name", str(ref.full))}
	kws, todos := c.keywords(s, p, merged)
	cl := call(ident(p.builtin), append(args, kws...)...)
	cl.Comments.Before = todos
	cl.ForceMultiLine = true
	return cl
}

// steps converts provisioner or post-processor blocks into the list one
// build gets: only, except and override applied.
func (c *converter) steps(s *scope, blocks []*hclsyntax.Block, k kind) *build.ListExpr {
	out := &build.ListExpr{ForceMultiLine: true}
	// Comments for steps that are TODOs go before the next step, or
	// before the list's end.
	var pending []build.Comment
	defer func() { out.End.Before = append(out.End.Before, pending...) }()
	for _, blk := range blocks {
		if len(blk.Labels) != 1 {
			pending = append(pending, c.todo(blk.Range(), "a "+blk.Type+" block needs a type")...)
			continue
		}
		if !c.applies(s, blk) {
			continue
		}
		p := pluginFor(blk.Labels[0], k)
		if p == nil || c.opts.Builtins[p.builtin] == nil {
			what := map[kind]string{provisionerKind: "provisioner", postProcessorKind: "post-processor"}[k]
			pending = append(pending, c.todo(blk.Range(), fmt.Sprintf("the %s %q has no imgbuild equivalent", what, blk.Labels[0]))...)
			continue
		}
		// A TODO of the block's own text warns for the first build it goes
		// into; one of an override's, for the build it overrides.
		kws, todos := c.keywords(s, p, c.overridden(s, blk))
		cl := call(ident(p.builtin), kws...)
		cl.Comments.Before = append(pending, todos...)
		pending = nil
		out.List = append(out.List, cl)
	}
	return out
}

// applies reports whether a provisioner's only/except let it into the
// build of s.
func (c *converter) applies(s *scope, blk *hclsyntax.Block) bool {
	match := func(a *hclsyntax.Attribute) bool {
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() || !v.CanIterateElements() {
			return false
		}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.Type().FriendlyName() != "string" {
				continue
			}
			n := e.AsString()
			if n == s.src.label || n == s.src.full || n == s.src.name {
				return true
			}
		}
		return false
	}
	if a := blk.Body.Attributes["only"]; a != nil && !match(a) {
		return false
	}
	if a := blk.Body.Attributes["except"]; a != nil && match(a) {
		return false
	}
	return true
}

// overridden returns a provisioner's body with the override for the
// build of s merged in (override = { "amazon-ebs.a" = { key = value } }).
func (c *converter) overridden(s *scope, blk *hclsyntax.Block) *hclsyntax.Body {
	body := &hclsyntax.Body{Attributes: hclsyntax.Attributes{}, Blocks: blk.Body.Blocks, SrcRange: blk.Body.SrcRange}
	for k, a := range blk.Body.Attributes {
		switch k {
		case "only", "except", "override":
		default:
			body.Attributes[k] = a
		}
	}
	a := blk.Body.Attributes["override"]
	if a == nil {
		return body
	}
	obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return body
	}
	for _, item := range obj.Items {
		key := hcl.ExprAsKeyword(item.KeyExpr)
		if v, diags := item.KeyExpr.Value(nil); key == "" && !diags.HasErrors() && v.Type().FriendlyName() == "string" {
			key = v.AsString()
		}
		if key != s.src.label && key != s.src.name && key != s.src.full {
			continue
		}
		inner, ok := item.ValueExpr.(*hclsyntax.ObjectConsExpr)
		if !ok {
			continue
		}
		for _, kv := range inner.Items {
			name := hcl.ExprAsKeyword(kv.KeyExpr)
			if v, diags := kv.KeyExpr.Value(nil); name == "" && !diags.HasErrors() && v.Type().FriendlyName() == "string" {
				name = v.AsString()
			}
			if name == "" {
				continue
			}
			r := hcl.RangeBetween(kv.KeyExpr.Range(), kv.ValueExpr.Range())
			body.Attributes[name] = &hclsyntax.Attribute{Name: name, Expr: kv.ValueExpr, SrcRange: r, NameRange: kv.KeyExpr.Range()}
		}
	}
	return body
}
