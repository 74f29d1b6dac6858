"""containerd configuration from data, per containerd major version.

containerd 1.x reads config ``version = 2`` with the CRI plugin at
``io.containerd.grpc.v1.cri``; containerd 2.x reads ``version = 3`` with the CRI
runtime and image plugins split (``io.containerd.cri.v1.runtime`` and
``io.containerd.cri.v1.images``). Both need runc's ``SystemdCgroup = true`` to match
the kubelet's systemd cgroup driver; a mismatch makes pods restart in a loop.
Rendered by the container_runtime role through the ``cnilab.cluster.containerd_config``
filter.
"""

from __future__ import annotations


def config_toml(containerd_version: str, sandbox_image: str) -> str:
    """The whole /etc/containerd/config.toml for this containerd version."""
    major = int(containerd_version.lstrip("v").split(".")[0])
    if major == 2:
        return "\n".join([
            "# Managed by cnilab (container_runtime role): containerd 2.x, config version 3",
            "version = 3",
            "",
            "[plugins.'io.containerd.cri.v1.images'.pinned_images]",
            f"  sandbox = '{sandbox_image}'",
            "",
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]",
            "  runtime_type = 'io.containerd.runc.v2'",
            "",
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]",
            "  SystemdCgroup = true",
            "",
        ])
    if major == 1:
        return "\n".join([
            "# Managed by cnilab (container_runtime role): containerd 1.x, config version 2",
            "version = 2",
            "",
            '[plugins."io.containerd.grpc.v1.cri"]',
            f'  sandbox_image = "{sandbox_image}"',
            "",
            '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
            '  runtime_type = "io.containerd.runc.v2"',
            "",
            '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
            "  SystemdCgroup = true",
            "",
        ])
    raise ValueError(f"containerd {containerd_version}: only 1.x and 2.x are supported")
