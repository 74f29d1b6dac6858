#!/usr/bin/python
"""Build the benchmark pod image (an OCI archive) from the node's pinned tools."""


DOCUMENTATION = r"""
module: bench_image
short_description: Build a reproducible OCI image archive holding the node's benchmark tools
description:
  - Packs the given binaries (with the shared libraries ldd names) and a static busybox
    into a one-layer OCI image whose digest depends only on the file contents.
  - Writes the archive and a JSON record (digest, reference, per-file sha256) next to it;
    reports changed only when the digest differs from the recorded one.
options:
  binaries:
    description: Name in /usr/local/bin of the image -> path of the binary on the node.
    type: dict
    required: true
  busybox:
    description: A statically linked busybox, for sh, ping, kill, cat and sleep.
    type: str
    default: /bin/busybox
  name:
    description: Image name (without tag).
    type: str
    required: true
  tag:
    description: Image tag.
    type: str
    required: true
  dest:
    description: Path of the OCI archive; the record is written to DEST.json.
    type: str
    required: true
  labels:
    description: Labels in the image config (e.g. the tool versions).
    type: dict
    default: {}
"""

RETURN = r"""
digest:
  description: The image manifest digest (sha256:...).
  type: str
  returned: always
reference:
  description: NAME@DIGEST, what pods reference.
  type: str
  returned: always
record:
  description: What DEST.json holds.
  type: dict
  returned: always
"""

import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.cnilab.cluster.plugins.module_utils import bench_image  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={"binaries": {"type": "dict", "required": True},
                       "busybox": {"type": "str", "default": "/bin/busybox"},
                       "name": {"type": "str", "required": True},
                       "tag": {"type": "str", "required": True},
                       "dest": {"type": "str", "required": True},
                       "labels": {"type": "dict", "default": {}}},
        supports_check_mode=True,
    )
    p = module.params
    try:
        built = bench_image.build(
            lambda argv: module.run_command(argv), {k: str(v) for k, v in p["binaries"].items()},
            p["busybox"], p["name"], p["tag"], platform.machine(),
            {k: str(v) for k, v in p["labels"].items()})
    except (bench_image.ImageError, OSError) as exc:
        module.fail_json(msg=f"bench image: {exc}")
    blobs, index = built.pop("blobs"), built.pop("index")
    record_path = p["dest"] + ".json"
    previous = {}
    if os.path.isfile(record_path):
        with open(record_path) as handle:
            try:
                previous = json.load(handle)
            except ValueError:
                previous = {}
    changed = previous.get("digest") != built["digest"] or not os.path.isfile(p["dest"])
    if changed and not module.check_mode:
        directory = os.path.dirname(p["dest"])
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        bench_image.write_archive(p["dest"], blobs, index)
        tmp = record_path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(built, handle, indent=2, sort_keys=True)
        os.replace(tmp, record_path)
    module.exit_json(changed=changed, digest=built["digest"], reference=built["reference"],
                     record=built)


if __name__ == "__main__":
    main()
