// Package amazon is the amazon_ebs() builder and the aws_ami() lookup: it
// builds EBS-backed AMIs on aws-sdk-go-v2, the flow Packer's amazon-ebs
// users rely on, with imgbuild's graph on top (an AMI built here can be the
// source of another build through base.image_id).
//
// A build is a sequence of steps, one per file (step_*.go), each with its
// cleanup; each step's fields are its inputs (the build's environment,
// buildEnv, and the earlier steps it reads) and its outputs. Build wires
// them (build.go):
//
//	pre-validate → source AMI → network → key pair → security group →
//	launch instance → wait for instance → connect → provision → stop
//	instance → deregister existing AMI → create AMI → test → copy AMI →
//	AMI attributes → tag tested → artifact
//
// (network only when a subnet or VPC is named or filtered for; stop
// instance only on demand, as a one-time spot instance cannot be stopped;
// deregister existing AMI only with force_deregister; test and tag tested
// only with tests; copy AMI only with ami_regions; AMI attributes only
// with permissions or deprecate_at). Tags go on every AMI and snapshot, in
// every region, in the call that makes it, so there is no tagging step to
// fail half-way; the tested tag comes last, once the AMI is published.
//
// The test step (engine.TestStep) launches an on-demand instance from the
// new AMI with a temporary key pair and security group of its own, in the
// build's subnet and VPC, connects to it as to the build instance (its
// host key learned from its console unless pinned), runs the build's tests
// and removes the instance, key pair and group. Publishing (copies, launch
// permissions, the tested tag) comes only after every test passed; a
// failed test removes the AMI and its snapshots as any failure does.
//
// Whatever happens the instance is terminated and the temporary key pair,
// security group and launch template deleted; on failure or cancellation
// every AMI and snapshot the build made is removed too, in every region.
// Every temporary resource is tagged at creation with the build's token, and
// every name is chosen before the call that creates it, so that a cleanup
// finds what a call made even when the call's answer was lost; a cleanup
// call that fails is tried again.
//
// Credentials, region and endpoint come from the SDK's standard chain
// (environment, shared config and profile, SSO, web identity, container and
// instance roles; AWS_ENDPOINT_URL works unchanged) plus an assume_role
// option. All builds of a process share, per region, an adaptive retryer
// (client-side rate limiting that backs off on throttling) and a cap on
// concurrent API calls, so that many parallel builds do not throttle each
// other.
//
// The package knows nothing of Starlark: its configs are schema-tagged
// structs (Config, LookupConfig) that the builtins layer decodes keyword
// arguments into, and aws_ami(...) reaches source_ami as a value.Object that
// SourceAMI decodes.
package amazon
