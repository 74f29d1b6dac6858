"""Invoking the real CNI reference plugins exactly as a container runtime does.

The runtime contract (CNI spec 1.0): the plugin binary is executed with
``CNI_COMMAND``, ``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME`` and
``CNI_PATH`` in its environment and the network configuration on stdin; for a
configuration list each plugin gets the previous plugin's result as
``prevResult``. We run the plugin inside the emulated host's namespace so that
host-side objects (bridge, host veth) land on that host.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cnilab import paths
from cnilab.errors import CnilabError
from cnilab.lab import sh


class CniError(CnilabError):
    """A CNI plugin returned an error result."""


def invoke(
    command: str,
    conf: dict[str, Any],
    *,
    host_netns: str,
    pod_netns: str,
    container_id: str,
    ifname: str,
    plugin_name: str | None = None,
) -> dict[str, Any]:
    """Run one plugin for one container; returns its JSON result (ADD).

    The binary is ``conf['type']``, or ``plugin_name`` when a runtime-side
    component calls an IPAM plugin directly (as Calico's and Cilium's CNI
    plugins do with their IPAM), passing the whole network config.
    """
    plugin = paths.cni_plugin_dir() / str(plugin_name or conf["type"])
    if not plugin.is_file():
        raise CniError(f"CNI plugin '{plugin.name}' not found in {paths.cni_plugin_dir()} "
                       "(install containernetworking-plugins or set CNILAB_CNI_PATH)")
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": f"/var/run/netns/{pod_netns}",
        "CNI_IFNAME": ifname,
        "CNI_PATH": str(paths.cni_plugin_dir()),
    }
    proc = sh.run(sh.in_netns(host_netns, [str(plugin)]), input_text=json.dumps(conf),
                  env=env, check=False)
    if proc.returncode != 0:
        try:
            err = json.loads(proc.stdout)
            detail = f"{err.get('msg', '')} {err.get('details', '')}".strip()
        except json.JSONDecodeError:
            detail = (proc.stderr or proc.stdout).strip()
        raise CniError(f"CNI {command} with plugin '{plugin.name}' for {pod_netns} failed: "
                       f"{detail}")
    if command != "ADD" or not proc.stdout.strip():
        return {}
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def add_list(
    conflist: dict[str, Any], *, host_netns: str, pod_netns: str, container_id: str, ifname: str
) -> dict[str, Any]:
    """ADD a whole configuration list, chaining ``prevResult`` as a runtime does."""
    prev: dict[str, Any] | None = None
    for plugin_conf in conflist["plugins"]:
        conf = {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **plugin_conf}
        if prev is not None:
            conf["prevResult"] = prev
        prev = invoke("ADD", conf, host_netns=host_netns, pod_netns=pod_netns,
                      container_id=container_id, ifname=ifname)
    return prev or {}


def del_list(
    conflist: dict[str, Any], *, host_netns: str, pod_netns: str, container_id: str, ifname: str
) -> None:
    """DEL a configuration list: plugins in reverse order, as the CNI spec requires."""
    for plugin_conf in reversed(conflist["plugins"]):
        conf = {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **plugin_conf}
        invoke("DEL", conf, host_netns=host_netns, pod_netns=pod_netns,
               container_id=container_id, ifname=ifname)


def del_loopback(*, host_netns: str, pod_netns: str, container_id: str, cni_version: str) -> None:
    invoke("DEL", {"cniVersion": cni_version, "name": "lo", "type": "loopback"},
           host_netns=host_netns, pod_netns=pod_netns, container_id=container_id, ifname="lo")


def add_loopback(*, host_netns: str, pod_netns: str, container_id: str, cni_version: str) -> None:
    """Bring up ``lo`` in the pod with the loopback plugin, as runtimes do."""
    invoke("ADD", {"cniVersion": cni_version, "name": "lo", "type": "loopback"},
           host_netns=host_netns, pod_netns=pod_netns, container_id=container_id, ifname="lo")


def bridge_conflist(name: str, bridge: str, mtu: int, ipam: dict[str, Any],
                    extra_plugins: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A conflist whose main plugin is the reference ``bridge`` plugin acting as the pods'
    gateway (the delegate shape flannel, weave and kube-router all hand to it)."""
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": True,
            "isDefaultGateway": True,
            "hairpinMode": True,
            "ipMasq": False,
            "mtu": mtu,
            "ipam": ipam,
        }, *(extra_plugins or [])],
    }
