package awstest

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"
)

// KeyInstaller installs an authorized key on the machine the tests connect
// to (sshtest.Server has the method).
type KeyInstaller interface {
	AddAuthorizedKey(t testing.TB, line string)
}

// CloudInit returns an SDK middleware that plays the instances' cloud-init
// on the local sshd the tests point ssh_host at: when a RunInstances or
// CreateFleet call launches instances, it reads each one's key pair from
// moto (DescribeInstances, DescribeKeyPairs with the public key, through
// the test's own client) and installs it on srv, as cloud-init installs
// the key pair from the instance metadata at boot. It changes nothing the
// client sends or receives.
func (s *Server) CloudInit(t testing.TB, srv KeyInstaller) func(*middleware.Stack) error {
	var mu sync.Mutex
	installed := map[string]bool{}
	boot := func(ctx context.Context, region string, ids []string) {
		if len(ids) == 0 {
			return
		}
		c := s.EC2(region)
		out, err := c.DescribeInstances(context.WithoutCancel(ctx), &ec2.DescribeInstancesInput{InstanceIds: ids})
		if err != nil {
			t.Logf("awstest cloud-init: describing %v: %v", ids, err)
			return
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				name := aws.ToString(i.KeyName)
				mu.Lock()
				done := name == "" || installed[name]
				installed[name] = true
				mu.Unlock()
				if done {
					continue
				}
				keys, err := c.DescribeKeyPairs(context.WithoutCancel(ctx), &ec2.DescribeKeyPairsInput{KeyNames: []string{name}, IncludePublicKey: aws.Bool(true)})
				if err != nil || len(keys.KeyPairs) == 0 {
					t.Logf("awstest cloud-init: reading key pair %s: %v", name, err)
					continue
				}
				srv.AddAuthorizedKey(t, aws.ToString(keys.KeyPairs[0].PublicKey))
			}
		}
	}
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("awstest/cloud-init",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if err != nil {
					return out, md, err
				}
				region := awsmiddleware.GetRegion(ctx)
				switch o := out.Result.(type) {
				case *ec2.RunInstancesOutput:
					var ids []string
					for _, i := range o.Instances {
						ids = append(ids, aws.ToString(i.InstanceId))
					}
					boot(ctx, region, ids)
				case *ec2.CreateFleetOutput:
					var ids []string
					for _, i := range o.Instances {
						ids = append(ids, i.InstanceIds...)
					}
					boot(ctx, region, ids)
				}
				return out, md, err
			}), middleware.After)
	}
}
