package amazon

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/imgbuild/imgbuild/engine"
)

// Verify implements BuilderDef.Verify: each artifact's AMIs must still be
// available in every region they were copied to. The checks of a run are
// grouped by credentials and region, and each region is asked once: one
// DescribeImages call filtered by image-id (per 200 ids, the filter's
// limit), however many builds there are; the regions are asked at once.
func (d *Driver) Verify(ctx context.Context, checks []engine.ArtifactCheck) []error {
	errs := make([]error, len(checks))
	type group struct {
		sc    sessionConfig
		ids   map[string][]int // AMI id → the checks that need it
		order []string
		// what the region answered
		available map[string]bool
		err       error
	}
	groups := map[string]*group{}
	var keys []string
	for i, c := range checks {
		cfg, ok := c.Config.(*Config)
		if !ok {
			errs[i] = fmt.Errorf("%s: config is %T, not *amazon.Config", BuilderName, c.Config)
			continue
		}
		for region, id := range imageIDs(c.Artifact) {
			role := ""
			if cfg.AssumeRole != nil {
				role = cfg.AssumeRole.RoleARN
			}
			key := strings.Join([]string{cfg.Profile, role, region}, "\x00")
			g, ok := groups[key]
			if !ok {
				g = &group{sc: sessionConfig{Region: region, Profile: cfg.Profile, AssumeRole: cfg.AssumeRole, Name: "imgbuild-verify"}, ids: map[string][]int{}}
				groups[key] = g
				keys = append(keys, key)
			}
			if _, seen := g.ids[id]; !seen {
				g.order = append(g.order, id)
			}
			g.ids[id] = append(g.ids[id], i)
		}
	}
	sort.Strings(keys)
	// The regions are asked at once: the run waits for the slowest, not
	// for their sum.
	_ = eachRegion(ctx, keys, func(key string) error {
		g := groups[key]
		g.available, g.err = d.availableImages(ctx, g.sc, g.order)
		return nil
	})
	for _, key := range keys {
		g := groups[key]
		region := g.sc.Region
		for _, id := range g.order {
			for _, i := range g.ids[id] {
				switch {
				case errs[i] != nil:
				case g.err != nil:
					errs[i] = fmt.Errorf("checking %s in %s: %w", id, region, g.err)
				case !g.available[id]:
					errs[i] = fmt.Errorf("AMI %s is no longer available in %s", id, region)
				}
			}
		}
	}
	return errs
}

// availableImages returns which of ids are available AMIs in the session's
// region.
func (d *Driver) availableImages(ctx context.Context, sc sessionConfig, ids []string) (map[string]bool, error) {
	s, err := d.newSession(ctx, sc)
	if err != nil {
		return nil, err
	}
	found := map[string]bool{}
	for chunk := range slices.Chunk(ids, 200) {
		out, err := s.ec2(sc.Region).DescribeImages(ctx, &ec2.DescribeImagesInput{
			Filters: []types.Filter{{Name: aws.String("image-id"), Values: chunk}},
		})
		if err != nil {
			return nil, explain(err)
		}
		for _, img := range out.Images {
			if img.State == types.ImageStateAvailable {
				found[aws.ToString(img.ImageId)] = true
			}
		}
	}
	return found, nil
}

// imageIDs reads an artifact's image_ids (region → AMI id), as the build
// made it or as state gives it back (decoded from JSON).
func imageIDs(a *engine.Artifact) map[string]string {
	out := map[string]string{}
	switch m := a.Fields["image_ids"].(type) {
	case map[string]string:
		for k, v := range m {
			out[k] = v
		}
	case map[string]any:
		for k, v := range m {
			if s, ok := v.(string); ok && s != "" {
				out[k] = s
			}
		}
	}
	if len(out) == 0 && a.Region != "" && strings.HasPrefix(a.ID, "ami-") {
		out[a.Region] = a.ID
	}
	return out
}
