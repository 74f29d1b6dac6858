"""containerd configuration from data, per containerd major version.

containerd 1.x reads config ``version = 2`` with the CRI plugin at
``io.containerd.grpc.v1.cri``; containerd 2.x reads ``version = 3`` with the CRI
runtime and image plugins split (``io.containerd.cri.v1.runtime`` and
``io.containerd.cri.v1.images``). Both need runc's ``SystemdCgroup = true`` to match
the kubelet's systemd cgroup driver; a mismatch makes pods restart in a loop.
Rendered by the container_runtime role through the ``cnilab.cluster.containerd_config``
filter.

The check reads what containerd actually loaded (``containerd config dump``: the file
merged over the defaults), not ``crictl info``. One exception: before 1.5,
containerd/cri keeps a runtime's ``options`` as a ``toml.Primitive``, whose fields are
unexported, so ``crictl info`` prints them as ``{}`` and ``config dump`` as an empty
``[...runc.options]`` table (containerd#4203; fixed in 1.5 by containerd#5300, which
made them a map). On 1.4 (the paper-2020 stack) SystemdCgroup is read from the file
containerd loads, /etc/containerd/config.toml, and everything else from the dump.
"""

from __future__ import annotations

import tomllib
from typing import Any


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


def _plugin_paths(containerd_version: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(runc options table, sandbox image key) in the loaded configuration, per major."""
    major = int(containerd_version.lstrip("v").split(".")[0])
    if major == 2:
        return (("plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc",
                 "options"),
                ("plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox"))
    if major == 1:
        return (("plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc",
                 "options"),
                ("plugins", "io.containerd.grpc.v1.cri", "sandbox_image"))
    raise ValueError(f"containerd {containerd_version}: only 1.x and 2.x are supported")


def _lookup(table: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(table, dict) or key not in table:
            return None
        table = table[key]
    return table


def dumps_runtime_options(containerd_version: str) -> bool:
    """Whether ``containerd config dump`` shows runc's options (1.5 and later)."""
    major, minor = (int(p) for p in containerd_version.lstrip("v").split(".")[:2])
    return (major, minor) >= (1, 5)


def loaded_problems(dump: str, containerd_version: str, sandbox_image: str,
                    config_file: str | None = None) -> list[str]:
    """What is wrong with the configuration containerd loaded (``containerd config
    dump``) for the kubelet cnilab configures: runc must use the systemd cgroup driver,
    and the sandbox image must be the profile's. ``config_file``: the text of
    /etc/containerd/config.toml, where runc's options are read on containerd < 1.5.
    Empty when it is right."""
    try:
        loaded = tomllib.loads(dump)
    except tomllib.TOMLDecodeError as exc:
        return [f"`containerd config dump` is not TOML ({exc})"]
    options_path, sandbox_path = _plugin_paths(containerd_version)
    problems = []
    options = _lookup(loaded, options_path)
    if not dumps_runtime_options(containerd_version):
        if not isinstance(options, dict):       # the table exists even when not dumped
            options = None
        else:
            try:
                options = _lookup(tomllib.loads(config_file or ""), options_path)
            except tomllib.TOMLDecodeError as exc:
                return [f"/etc/containerd/config.toml is not TOML ({exc})"]
    if not isinstance(options, dict) or options.get("SystemdCgroup") is not True:
        where = ".".join(f'"{p}"' if "." in p else p for p in options_path)
        found = options.get("SystemdCgroup") if isinstance(options, dict) else None
        problems.append(f"runc does not use the systemd cgroup driver ({where}.SystemdCgroup "
                        f"is {found})")
    sandbox = _lookup(loaded, sandbox_path)
    if sandbox != sandbox_image:
        problems.append(f"sandbox image {sandbox}, the profile pins {sandbox_image}")
    return problems
