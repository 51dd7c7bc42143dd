"""moto_server with the EC2 behaviour imgbuild's amazon driver relies on.

moto 5.2.1 lacks a few things real EC2 does and that the amazon driver's
tests must see happen. This launcher extends the counterpart (it never
changes what imgbuild's client sends or receives) and then runs moto's own
server, exactly as the moto_server command does:

    python3 imgbuild_moto.py -H 127.0.0.1 -p 5000

What it adds, each as real EC2 behaves:
  * CreateImage takes TagSpecifications for the snapshots it makes
    (moto raises NotImplementedError) and refuses a name already used by
    one of the account's AMIs in the region (InvalidAMIName.Duplicate).
  * CopyImage honours ClientToken (a retried copy returns the first copy),
    TagSpecifications for the image and its snapshots, Encrypted and
    KmsKeyId (the copy's snapshot is encrypted), and refuses a duplicate
    name.
  * EnableImageDeprecation / DisableImageDeprecation (moto answers 500)
    and DeprecationTime in DescribeImages.
  * DeleteLaunchTemplate of a name that does not exist answers
    InvalidLaunchTemplateName.NotFoundException (moto: MissingParameter).
  * DeleteFleets with TerminateInstances of a fleet whose instances are
    already terminated succeeds (moto: InvalidParameterCombination "No
    instances specified").
  * Images made by CreateImage or CopyImage are "pending" (their snapshots
    "pending" with a growing Progress) for the first
    IMGBUILD_MOTO_PENDING_POLLS polls (DescribeImages or DescribeSnapshots
    calls that name them; default 0: available at once, as plain moto),
    so that waiters and their progress reports run against a server that
    makes them wait.

What it can play, for a server of its own (awstest.Instances gives the
environment), so that a build that only knows what EC2 tells it reaches
the local sshd playing its instance:
  * IMGBUILD_MOTO_INSTANCE_ADDRESS: the public IP address EC2 gives a
    launched instance's network interface (moto draws one at random from
    54.214.0.0/16) is this one.
  * IMGBUILD_MOTO_HOST_KEYS: a file of public keys ("ssh-ed25519 AAAA...");
    GetConsoleOutput shows them as cloud-init prints an instance's host
    keys on its console at boot (moto's console has none).
And it fixes one moto bug: with MOTO_AMIS_PATH, moto parses each AMI's
creation_date in place in its module-wide list when a region's backend
loads them, so the second region to load fails ("Parser must be a string
... not datetime"); each region now loads from a copy.
"""

import copy
import os
import sys

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import (
    EC2ClientError,
    InvalidLaunchTemplateNameNotFoundError,
    InvalidParameterCombination,
)
import moto.ec2.models.amis as amis_module
from moto.ec2.models.amis import AmiBackend
from moto.ec2.models.elastic_block_store import Snapshot
from moto.ec2.models.fleets import Fleet
from moto.ec2.models.launch_templates import LaunchTemplateBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.responses.general import SAMPLE_CONSOLE_OUTPUT, General
from moto.ec2.utils import Base64EncodedString
import moto.ec2.models.elastic_network_interfaces as network_interfaces

PENDING_POLLS = int(os.environ.get("IMGBUILD_MOTO_PENDING_POLLS", "0"))
INSTANCE_ADDRESS = os.environ.get("IMGBUILD_MOTO_INSTANCE_ADDRESS", "")
HOST_KEYS = os.environ.get("IMGBUILD_MOTO_HOST_KEYS", "")


def _tag_specs(resp):
    """Returns {resource type: {key: value}} from TagSpecifications."""
    out = {}
    for spec in resp._get_param("TagSpecifications", []) or []:
        rtype = spec.get("ResourceType")
        tags = out.setdefault(rtype, {})
        for tag in spec.get("Tags", []) or []:
            tags[tag["Key"]] = tag.get("Value", "")
    return out


def _check_name(backend, name):
    if not name:
        return
    for ami in backend.amis.values():
        if ami.name == name and ami.owner_id == backend.account_id:
            raise EC2ClientError(
                "InvalidAMIName.Duplicate",
                f"AMI name {name} is already in use by AMI {ami.id}",
            )


def _make_pending(ami):
    if PENDING_POLLS <= 0:
        return
    ami._imgbuild_pending = PENDING_POLLS
    ami.state = "pending"
    ami.ebs_snapshot.status = "pending"
    ami.ebs_snapshot._imgbuild_progress = "0%"


def _advance(ami):
    """One poll of a pending image: the answer being made shows it pending
    for PENDING_POLLS polls, then available (moto serializes the answer
    after the handler returns, so this changes the current answer)."""
    if ami.state != "pending" or not hasattr(ami, "_imgbuild_pending"):
        return
    left = ami._imgbuild_pending
    snap = ami.ebs_snapshot
    if left > 0:
        ami._imgbuild_pending = left - 1
        snap._imgbuild_progress = f"{(PENDING_POLLS - left + 1) * 100 // (PENDING_POLLS + 1)}%"
        return
    ami.state = "available"
    snap.status = "completed"
    snap._imgbuild_progress = "100%"


def _tag(backend, resource_id, tags):
    if tags:
        backend.create_tags([resource_id], tags)


def create_image(self):
    name = self._get_param("Name")
    description = self._get_param("Description", "")
    instance_id = self._get_param("InstanceId")
    specs = _tag_specs(self)
    self.error_on_dryrun()
    backend = self.ec2_backend
    _check_name(backend, name)
    image_tags = [
        {"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in specs.get("image", {}).items()]}
    ] if specs.get("image") else []
    image = backend.create_image(instance_id, name, description, tag_specifications=image_tags)
    _tag(backend, image.ebs_snapshot.id, specs.get("snapshot"))
    _make_pending(image)
    return ActionResult({"ImageId": image.id})


def copy_image(self):
    source_image_id = self._get_param("SourceImageId")
    source_region = self._get_param("SourceRegion")
    name = self._get_param("Name")
    description = self._get_param("Description")
    token = self._get_param("ClientToken")
    encrypted = str(self._get_param("Encrypted", False)).lower() == "true"
    kms_key_id = self._get_param("KmsKeyId")
    specs = _tag_specs(self)
    self.error_on_dryrun()
    backend = self.ec2_backend
    tokens = backend.__dict__.setdefault("_imgbuild_copy_tokens", {})
    if token and token in tokens:
        return ActionResult({"ImageId": tokens[token]})
    _check_name(backend, name or "")
    image = backend.copy_image(source_image_id, source_region, name, description)
    if token:
        tokens[token] = image.id
    _tag(backend, image.id, specs.get("image"))
    _tag(backend, image.ebs_snapshot.id, specs.get("snapshot"))
    if encrypted or kms_key_id:
        image.ebs_snapshot.encrypted = True
        image.ebs_snapshot.kms_key_id = kms_key_id or "alias/aws/ebs"
    _make_pending(image)
    return ActionResult({"ImageId": image.id})


_original_describe_images = AmisResponse.describe_images


def describe_images(self):
    ids = self._get_param("ImageIds", []) or []
    for ami in list(self.ec2_backend.amis.values()):
        if not ids or ami.id in ids:
            _advance(ami)
    return _original_describe_images(self)


_original_describe_snapshots = ElasticBlockStore.describe_snapshots


def describe_snapshots(self):
    ids = self._get_param("SnapshotIds", []) or []
    for ami in list(self.ec2_backend.amis.values()):
        if ami.ebs_snapshot.id in ids:
            _advance(ami)
    return _original_describe_snapshots(self)


def enable_image_deprecation(self):
    ami_id = self._get_param("ImageId")
    deprecate_at = self._get_param("DeprecateAt")
    self.error_on_dryrun()
    ami = self.ec2_backend.describe_images(ami_ids=[ami_id])[0]
    if hasattr(deprecate_at, "strftime"):
        deprecate_at = deprecate_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    ami.deprecation_time = str(deprecate_at)
    return ActionResult({"Return": True})


def disable_image_deprecation(self):
    ami_id = self._get_param("ImageId")
    self.error_on_dryrun()
    ami = self.ec2_backend.describe_images(ami_ids=[ami_id])[0]
    ami.deprecation_time = None
    return ActionResult({"Return": True})


_original_delete_launch_template = LaunchTemplateBackend.delete_launch_template


def delete_launch_template(self, name, tid):
    if name and not tid and name not in self.launch_template_name_to_ids:
        raise InvalidLaunchTemplateNameNotFoundError()
    return _original_delete_launch_template(self, name, tid)


LaunchTemplateBackend.delete_launch_template = delete_launch_template

_original_fleet_terminate = Fleet.terminate_instances


def fleet_terminate_instances(self):
    try:
        _original_fleet_terminate(self)
    except InvalidParameterCombination:
        pass  # every instance is terminated already: nothing to do


def console_output(self):
    result = _original_console_output(self)
    with open(HOST_KEYS, encoding="utf-8") as f:
        keys = [line.strip() for line in f if line.strip()]
    name = "ip-" + (INSTANCE_ADDRESS or "10-0-0-1").replace(".", "-")
    lines = [SAMPLE_CONSOLE_OUTPUT.rstrip("\n"), "ec2: #############################################################",
             "ec2: -----BEGIN SSH HOST KEY KEYS-----"]
    lines += ["ec2: %s root@%s" % (" ".join(k.split()[:2]), name) for k in keys]
    lines += ["ec2: -----END SSH HOST KEY KEYS-----", "ec2: #############################################################",
              "Cloud-init v. 22.4.2 finished"]
    result.result["Output"] = Base64EncodedString.from_raw_string("\n".join(lines) + "\n")
    return result


_original_console_output = General.get_console_output
_original_load_amis = AmiBackend._load_amis
_pristine_amis = copy.deepcopy(amis_module.AMIS)


def load_amis(self):
    amis_module.AMIS = copy.deepcopy(_pristine_amis)
    _original_load_amis(self)


AmiBackend._load_amis = load_amis

if INSTANCE_ADDRESS:
    network_interfaces.random_public_ip = lambda: INSTANCE_ADDRESS
if HOST_KEYS:
    General.get_console_output = console_output
Fleet.terminate_instances = fleet_terminate_instances
AmisResponse.create_image = create_image
AmisResponse.copy_image = copy_image
AmisResponse.describe_images = describe_images
ElasticBlockStore.describe_snapshots = describe_snapshots
AmisResponse.enable_image_deprecation = enable_image_deprecation
AmisResponse.disable_image_deprecation = disable_image_deprecation
Snapshot.progress = property(lambda self: getattr(self, "_imgbuild_progress", "100%"))

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main(sys.argv[1:]))
