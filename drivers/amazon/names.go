package amazon

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/imgbuild/imgbuild/engine/schema"
)

// The names amazon_ebs checks before anything runs: regions, AMI ids and
// AMI names.

// Regions are the AWS regions this version knows, in every partition
// (commercial, China, GovCloud). A region newer than the list is accepted
// with skip_region_validation = True.
var Regions = []string{
	"af-south-1",
	"ap-east-1", "ap-east-2",
	"ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
	"ap-south-1", "ap-south-2",
	"ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
	"ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
	"ca-central-1", "ca-west-1",
	"cn-north-1", "cn-northwest-1",
	"eu-central-1", "eu-central-2",
	"eu-north-1",
	"eu-south-1", "eu-south-2",
	"eu-west-1", "eu-west-2", "eu-west-3",
	"il-central-1",
	"me-central-1", "me-south-1",
	"mx-central-1",
	"sa-east-1",
	"us-east-1", "us-east-2",
	"us-gov-east-1", "us-gov-west-1",
	"us-west-1", "us-west-2",
}

// VolumeTypes are the EBS volume types.
var VolumeTypes = []string{"gp3", "gp2", "io2", "io1", "st1", "sc1", "standard"}

// checkRegion returns why region is not one to build in, or nil.
func checkRegion(region string, skip bool) error {
	if region == "" {
		return fmt.Errorf("is empty: name an AWS region such as \"eu-west-1\"")
	}
	for _, r := range Regions {
		if r == region {
			return nil
		}
	}
	if skip && regionShape.MatchString(region) {
		return nil
	}
	msg := fmt.Sprintf("unknown region %q", region)
	if near := schema.Nearest(region, Regions); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	if skip {
		return fmt.Errorf("%s: region names read like \"eu-west-1\"", msg)
	}
	return fmt.Errorf("%s; if it is a region newer than this imgbuild, set skip_region_validation = True", msg)
}

var regionShape = regexp.MustCompile(`^[a-z]{2,}(-[a-z]+)+-[0-9]+$`)

var amiID = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)

// CheckAMIID returns why id is not an AMI id, or nil. AMI ids read "ami-"
// and 8 or 17 lowercase hexadecimal digits.
func CheckAMIID(id string) error {
	if amiID.MatchString(id) {
		return nil
	}
	msg := fmt.Sprintf("%q is not an AMI id: AMI ids read \"ami-\" and 8 or 17 hexadecimal digits, like \"ami-0abcdef1234567890\"", id)
	switch {
	case id == "":
		return fmt.Errorf("is empty: give an AMI id (\"ami-0abcdef1234567890\") or %s(...)", LookupName)
	case amiID.MatchString(strings.ToLower(id)):
		return fmt.Errorf("%q is not an AMI id: AMI ids are lowercase (%q)", id, strings.ToLower(id))
	case !strings.HasPrefix(id, "ami-"):
		return fmt.Errorf("%s; to find an AMI by its name, use %s(owners = [...], name = %q)", msg, LookupName, id)
	}
	return fmt.Errorf("%s", msg)
}

// AMI names: 3 to 128 characters, each a letter, a digit or one of
// ( ) [ ] space . / - ' @ _ (AWS's rules for CreateImage and CopyImage).
const (
	amiNameMin      = 3
	amiNameMax      = 128
	amiNamePunct    = "()[] ./-'@_"
	amiNameRuleText = "3 to 128 letters, digits and ( ) [ ] space . / - ' @ _"
)

func amiNameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(amiNamePunct, r)
}

// CheckAMIName returns why name breaks AWS's rules for AMI names, or nil;
// the error suggests a name that keeps them.
func CheckAMIName(name string) error {
	n := len([]rune(name))
	var bad []string
	seen := map[rune]bool{}
	for _, r := range name {
		if !amiNameChar(r) && !seen[r] {
			seen[r] = true
			bad = append(bad, strconv.QuoteRune(r))
		}
	}
	var problems []string
	if len(bad) > 0 {
		what := "is"
		if len(bad) > 1 {
			what = "are"
		}
		problems = append(problems, fmt.Sprintf("%s %s not allowed", strings.Join(bad, ", "), what))
	}
	if n < amiNameMin {
		problems = append(problems, fmt.Sprintf("it is %d characters long, fewer than %d", n, amiNameMin))
	}
	if n > amiNameMax {
		problems = append(problems, fmt.Sprintf("it is %d characters long, more than %d", n, amiNameMax))
	}
	if len(problems) == 0 {
		return nil
	}
	msg := fmt.Sprintf("%q breaks AWS's rules for AMI names: %s; use %s", name, strings.Join(problems, " and "), amiNameRuleText)
	if clean := CleanAMIName(name); clean != name && CheckAMIName(clean) == nil {
		msg += fmt.Sprintf(" (such as %q)", clean)
	}
	return fmt.Errorf("%s", msg)
}

// CleanAMIName turns s into a name that keeps AWS's rules where it can:
// characters not allowed become "-", and it is cut to 128 characters.
func CleanAMIName(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == amiNameMax {
			break
		}
		if !amiNameChar(r) {
			r = '-'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
