package amazon

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// LookupName is the lookup's name in descriptions.
const LookupName = "aws_ami"

// LookupConfig is aws_ami()'s configuration: which AMIs to consider and
// how to pick one.
type LookupConfig struct {
	Owners            []string          `kw:"owners,required" doc:"Accounts whose AMIs to consider: account ids, \"self\", \"amazon\", \"aws-marketplace\" or \"aws-backup-vault\". Required, so that nobody else's AMI of the same name is picked."`
	Name              string            `kw:"name" doc:"Name pattern of the AMI (* and ? are wildcards): \"debian-12-amd64-*\"."`
	Filters           map[string]string `kw:"filters" doc:"More EC2 DescribeImages filters, name → value (\"architecture\": \"x86_64\")."`
	MostRecent        bool              `kw:"most_recent" default:"True" doc:"Pick the newest match (True) or insist that exactly one AMI matches (False)."`
	Region            string            `kw:"region" doc:"Region to search; \"\" means the build's region (for plan --refresh: AWS_REGION or the profile's)."`
	IncludeDeprecated bool              `kw:"include_deprecated" doc:"Also consider deprecated AMIs."`
}

var lookupSchema = schema.Of(LookupName, "Finds an AMI when the build runs (read-only): the newest available AMI of the given owners matching the name and filters. Usable as amazon_ebs's source_ami; plan --refresh shows the id it finds.", &LookupConfig{})

// Validate implements schema.Validator.
func (l *LookupConfig) Validate(deferred schema.Deferred) error {
	if deferred.Has("owners") || deferred.Has("name") || deferred.Has("filters") {
		return nil
	}
	return l.validate()
}

func (l *LookupConfig) validate() error {
	if len(l.Owners) == 0 {
		return schema.Errorf("owners", "is empty: name the accounts whose AMIs may be picked (an account id, \"self\", \"amazon\", \"aws-marketplace\")")
	}
	for i, o := range l.Owners {
		switch {
		case accountID.MatchString(o), o == "self", o == "amazon", o == "aws-marketplace", o == "aws-backup-vault":
		default:
			return schema.Errorf("owners", "element %d: %q is not an owner: give a 12-digit account id, \"self\", \"amazon\", \"aws-marketplace\" or \"aws-backup-vault\"", i, o)
		}
	}
	if l.Name == "" && len(l.Filters) == 0 {
		return schema.Errorf("name", "is needed (or filters): without either, any AMI of the owners would do")
	}
	for _, k := range slices.Sorted(maps.Keys(l.Filters)) {
		if k == "" || l.Filters[k] == "" {
			return schema.Errorf("filters", "filter %q has an empty name or value", k)
		}
	}
	if l.Region != "" {
		if err := checkRegion(l.Region, true); err != nil {
			return schema.Errorf("region", "%v", err)
		}
	}
	return nil
}

// String describes the lookup as a user wrote it, for messages.
func (l *LookupConfig) String() string {
	var parts []string
	parts = append(parts, fmt.Sprintf("owners = %q", l.Owners))
	if l.Name != "" {
		parts = append(parts, fmt.Sprintf("name = %q", l.Name))
	}
	for _, k := range slices.Sorted(maps.Keys(l.Filters)) {
		parts = append(parts, fmt.Sprintf("%s = %q", k, l.Filters[k]))
	}
	return LookupName + "(" + strings.Join(parts, ", ") + ")"
}

// lookupDef declares aws_ami() for the registry.
func (d *Driver) lookupDef() *engine.LookupDef {
	return &engine.LookupDef{
		Schema: lookupSchema,
		Resolve: func(ctx context.Context, cfg any, build *value.Map) (string, error) {
			l, ok := cfg.(*LookupConfig)
			if !ok {
				return "", fmt.Errorf("%s: config is %T, not *amazon.LookupConfig", LookupName, cfg)
			}
			region := l.Region
			if region == "" {
				// As in a build: the lookup searches the build's region.
				if r, ok := build.Get("region"); ok {
					if rs, ok := r.(value.String); ok {
						region = rs.S
					}
				}
			}
			s, err := d.newSession(ctx, sessionConfig{Region: region, Name: LookupName})
			if err != nil {
				return "", err
			}
			if err := s.checkCredentials(ctx); err != nil {
				return "", err
			}
			img, err := s.findImage(ctx, s.region(), l)
			if err != nil {
				return "", err
			}
			return aws.ToString(img.ImageId), nil
		},
	}
}

// findImage resolves a lookup in region: the newest available match, or
// the only one.
func (s *session) findImage(ctx context.Context, region string, l *LookupConfig) (*types.Image, error) {
	if region == "" {
		return nil, fmt.Errorf("%s: no region to search: set region = \"...\" in %s(...), or AWS_REGION", LookupName, LookupName)
	}
	in := &ec2.DescribeImagesInput{
		Owners:            l.Owners,
		Filters:           []types.Filter{{Name: aws.String("state"), Values: []string{"available"}}},
		IncludeDeprecated: aws.Bool(l.IncludeDeprecated),
	}
	if l.Name != "" {
		in.Filters = append(in.Filters, types.Filter{Name: aws.String("name"), Values: []string{l.Name}})
	}
	for _, k := range slices.Sorted(maps.Keys(l.Filters)) {
		in.Filters = append(in.Filters, types.Filter{Name: aws.String(k), Values: []string{l.Filters[k]}})
	}
	var found []types.Image
	p := ec2.NewDescribeImagesPaginator(s.ec2(region), in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: searching %s: %w", LookupName, region, explain(err))
		}
		found = append(found, page.Images...)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%s: no available AMI in %s matches %s; check the owners, the name pattern and the region", LookupName, region, l)
	}
	// Newest first; ties broken by id so that the choice is stable.
	sort.SliceStable(found, func(i, j int) bool {
		ci, cj := aws.ToString(found[i].CreationDate), aws.ToString(found[j].CreationDate)
		if ci != cj {
			return ci > cj
		}
		return aws.ToString(found[i].ImageId) > aws.ToString(found[j].ImageId)
	})
	if len(found) > 1 && !l.MostRecent {
		var ids []string
		for i, img := range found {
			if i == 5 {
				ids = append(ids, fmt.Sprintf("and %d more", len(found)-5))
				break
			}
			ids = append(ids, fmt.Sprintf("%s (%s, %s)", aws.ToString(img.ImageId), aws.ToString(img.Name), aws.ToString(img.CreationDate)))
		}
		return nil, fmt.Errorf("%s: %d AMIs in %s match %s and most_recent = False: %s; narrow the name or filters, or set most_recent = True", LookupName, len(found), region, l, strings.Join(ids, ", "))
	}
	return &found[0], nil
}
