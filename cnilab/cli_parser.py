"""The command line's grammar: every subcommand, its arguments and its help.

Kept apart from the handlers (``cnilab.cli``) so that the grammar reads as one table of
contents. Each parser names its handler in ``handler`` (and, for commands with
actions, the action in ``action``); ``cnilab.cli`` maps the names to functions.

Conventions every subcommand keeps:
- ``--out DIR`` is always a parent directory in which a run or record directory is
  created; a single file written is ``--output FILE``.
- Commands with actions (``lab``, ``cluster``, ``inventory``) take them as subcommands,
  each with only its own options and help.
- ``--cni`` lists the plugins and ``--mode`` each plugin's modes, from the mode catalog.
- Abbreviated options are refused (``--out`` never silently means ``--output``).
"""

from __future__ import annotations

import argparse
import difflib
from functools import cache
from typing import Any, NoReturn

from cnilab import __version__


def _near(option: str, known: list[str]) -> list[str]:
    """Options ``option`` was probably meant to be: a longer or shorter form of it, or a
    near spelling."""
    return [k for k in known if k.startswith(option) or option.startswith(k)] or \
        difflib.get_close_matches(option, known, 1, 0.8)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line naming the command, what was wrong and where the help is,
    exit status 2 (argparse prints its usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        """As argparse, but an unknown option is reported by the subcommand that was
        given it, with the option it was probably meant to be."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser: argparse.ArgumentParser = getattr(parsed, "parser", self)
            known = [o for a in parser._actions for o in a.option_strings]
            hints = [f"{x} -> {close[0]}" for x in extras if x.startswith("--")
                     and (close := _near(x.split("=")[0], known))]
            hint = f"; did you mean {', '.join(hints)}?" if hints else ""
            parser.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed


@cache
def _modes() -> dict[str, list[str]]:
    from cnilab.modes import catalog

    return {cni: list(modes) for cni, modes in catalog().items()}


@cache
def _lab_modes() -> dict[str, list[str]]:
    from cnilab.modes import catalog

    return {cni: [name for name, m in modes.items() if m.lab_implemented]
            for cni, modes in catalog().items()}


def _mode_help(table: dict[str, list[str]]) -> str:
    return "the plugin's mode: " + "; ".join(f"{cni}: {', '.join(modes)}"
                                             for cni, modes in table.items() if modes)


def _parser(sub: Any, name: str, handler: str, help_text: str, description: str,
            **defaults: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=description,
                                                allow_abbrev=False)
    p.set_defaults(handler=handler, parser=p, **defaults)
    return p


def _group(sub: Any, name: str, help_text: str, description: str, dest: str,
           metavar: str) -> Any:
    """A command whose actions are subcommands (``lab``, ``inventory``, ``cluster``):
    abbreviations refused as everywhere, an action required."""
    group = sub.add_parser(name, help=help_text, description=description, allow_abbrev=False)
    return group.add_subparsers(dest=dest, required=True, metavar=metavar)


def _quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress (bar, Ansible tasks)")


def _out_dir(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--out", metavar="DIR", help=f"parent directory of the {what} "
                   "(default ./runs, or $CNILAB_RUNS_DIR)")


def _target_arguments(p: argparse.ArgumentParser) -> None:
    """Where ``run`` and ``reproduce`` measure."""
    p.add_argument("--lab", default="netns", metavar="netns[:NAME]|vagrant",
                   help="where to run: the netns lab (default, an emulation; netns:NAME runs "
                        "in a named instance beside others) or the Vagrant lab's cluster "
                        "(inventories/vagrant/hosts.yml)")
    p.add_argument("--inventory", metavar="FILE",
                   help="run on the kubeadm cluster of this inventory instead: every mode is "
                        "installed in turn (cnilab switch), then measured through Kubernetes")
    p.add_argument("--profile", default="current",
                   help="pin profile of versions/kubernetes.yml and versions/cni.yml for a "
                        "cluster (default current)")
    p.add_argument("--replace-kube-proxy", action="store_true",
                   help="on a cluster, let plugins that can replace kube-proxy do so")
    p.add_argument("--replace-lab", action="store_true",
                   help="take down a netns lab this run did not build (e.g. one brought up "
                        "with `cnilab lab up`) instead of refusing")


def _run_arguments(p: argparse.ArgumentParser) -> None:
    """What ``run`` and ``reproduce`` share beside the target."""
    _out_dir(p, "run directory")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed or interrupted run "
                   "(with the same spec, variant and overrides)")
    p.add_argument("--repetitions", type=int, metavar="N",
                   help="measure every cell at least N times, overriding the spec (claims "
                        "still get more rounds up to the spec's cap, or N if higher)")
    p.add_argument("--duration", type=int, metavar="SECONDS",
                   help="run every timed test (iperf3 -t, netperf -l) this long, overriding "
                        "the spec")
    _quiet(p)


def _cni_arguments(p: argparse.ArgumentParser, table: dict[str, list[str]],
                   policy: list[str], required: bool = True) -> None:
    """Which plugin, in which mode."""
    p.add_argument("--cni", required=required, choices=list(table), help="the CNI plugin")
    p.add_argument("--mode", required=required, help=_mode_help(table))
    helps = {"on": "network policies enforced (plugins that have a policy engine)",
             "off": "no policies, the plugin's default engine",
             "never": "cilium's policy engine switched off (policyEnforcementMode never)"}
    p.add_argument("--policy", choices=policy, default="off",
                   help="; ".join(f"{k}: {helps[k]}" for k in policy) + " (default off)")


def _operation_arguments(p: argparse.ArgumentParser, preflight: bool) -> None:
    """What every operation on real nodes takes."""
    p.add_argument("--inventory", required=True, metavar="FILE",
                   help="Ansible inventory (control_plane/workers, node_ip per host)")
    p.add_argument("--profile", default="current",
                   help="pin profile of versions/kubernetes.yml (default current; "
                        "paper-2020: the paper's versions)")
    _out_dir(p, "record directory")
    if preflight:
        p.add_argument("--skip-preflight", action="store_true",
                       help="do not check the hosts over SSH first (SSH, sudo, OS, kernel, "
                            "Python, cgroup, NIC, clock)")
    _quiet(p)


def _add_validate(sub: Any) -> None:
    p = _parser(sub, "validate", "validate", "check an experiment spec and show its plans",
                "Validate an experiment spec (errors are FILE:LINE: message, exit status 2), "
                "then show the plan of the full spec and of each variant (--quick, "
                "--standard) with its estimated duration.")
    p.add_argument("spec", metavar="SPEC", help="experiment YAML file")


def _add_lab(sub: Any) -> None:
    actions = _group(sub, "lab", "bring the netns lab up or down, or show it",
                     "Manage the embedded netns lab (hosts and pods as network namespaces, "
                     "real CNI plugins). up and down need root.", "action", "ACTION")

    def instance(p: argparse.ArgumentParser, every: bool) -> None:
        p.add_argument("--lab", default="netns", metavar="netns[:NAME]",
                       help="the netns lab (default), or its instance NAME: instances stand "
                            "side by side (a study keeps each mode in NAME.K)")
        if every:
            p.add_argument("--all", action="store_true", help="every instance on this machine")

    p = _parser(actions, "up", "lab", "build one CNI mode's datapath",
                "Build the lab's hosts, the datapath of --cni in --mode, its pods and "
                "endpoints, and verify them; print what was built.")
    instance(p, every=False)
    _cni_arguments(p, _lab_modes(), ["on", "off"])
    p.add_argument("--hosts", type=int, default=2, help="emulated hosts (default 2)")
    p.add_argument("--pods-per-host", type=int, default=2, help="pods per host (default 2)")
    p.add_argument("--offload", choices=["on", "off"], default="on",
                   help="tunnel segmentation offload of the hosts' underlay devices (VXLAN "
                        "modes): off makes the kernel segment in software, as on a NIC "
                        "without VXLAN offload (default on)")
    _quiet(p)

    p = _parser(actions, "down", "lab", "remove the lab and everything it made",
                "Remove the lab's namespaces, processes, devices and state files (and the "
                "per-mode labs of a study in NAME.K).")
    instance(p, every=True)
    _quiet(p)

    p = _parser(actions, "status", "lab", "show the lab that is up",
                "Show the lab's hosts, devices, routes, rules and pods, and the idle CPU of "
                "its daemons.")
    instance(p, every=True)
    p.add_argument("--json", action="store_true", help="as JSON")


def _add_run(sub: Any) -> None:
    p = _parser(sub, "run", "run", "run an experiment into a run directory",
                "Run every measurement of SPEC on the chosen target, writing "
                "<out>/<run-id>/ as measurements finish. Prints the run directory.")
    p.add_argument("spec", metavar="SPEC", help="experiment YAML file")
    _target_arguments(p)
    _run_arguments(p)
    p.add_argument("--report", action="store_true", help="write the report when done")


def _add_reproduce(sub: Any) -> None:
    p = _parser(sub, "reproduce", "reproduce",
                "run a study, report it, print the claims verdicts",
                "Run experiments/STUDY.yaml (e.g. lanman2020), write its report and print "
                "the verdict of each of the paper's claims, then the report's path. --quick "
                "runs the spec's smoke variant, --standard the variant sized to decide the "
                "claims in a stated time (`cnilab validate SPEC` shows both plans).")
    p.add_argument("study", metavar="STUDY", help="study name, e.g. lanman2020 "
                   "(experiments/STUDY.yaml), or a spec file path")
    _target_arguments(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--quick", dest="variant", action="store_const", const="quick",
                       default="", help="the spec's short smoke variant")
    which.add_argument("--standard", dest="variant", action="store_const", const="standard",
                       help="the spec's standard variant (decides the claims in its stated "
                            "time)")
    _run_arguments(p)


def _add_analysis(sub: Any) -> None:
    p = _parser(sub, "report", "report", "write the report, figures and summary of a run",
                "Regenerate report.html, report.md, summary.csv, claims.json and figures/ "
                "from a run directory alone.")
    p.add_argument("run_dir", metavar="RUN_DIR")

    p = _parser(sub, "compare", "compare", "compare runs cell by cell",
                "Put runs side by side: for every cell the first run and another share, "
                "both means, their ratio with a 95 % interval and whether the difference is "
                "significant. Runs on different targets are compared as ratios to each "
                "run's own underlay.")
    p.add_argument("runs", metavar="RUN_DIR", nargs="+", help="run directories (2 or more)")
    p.add_argument("--html", metavar="FILE", help="also write the tables and paired bar "
                   "figures to this HTML file")

    p = _parser(sub, "runs", "runs", "list run directories, their state and how to resume",
                "List the run directories under DIR (default ./runs or $CNILAB_RUNS_DIR): "
                "spec, target, start, state and progress, with the command that resumes an "
                "interrupted one.")
    p.add_argument("dir", metavar="DIR", nargs="?", help="parent of the run directories")

    p = _parser(sub, "parse", "parse", "parse a raw iperf3 or netperf output file",
                "Print, as JSON, the metrics the engine would store for a raw tool output "
                "(iperf3 -J, netperf omni -k), through the same parser. Invalid input: "
                "one-line error, exit 2.")
    p.add_argument("tool", choices=["iperf3", "netperf"])
    p.add_argument("file", metavar="FILE")

    p = _parser(sub, "bundle", "bundle", "pack a run into a verifiable .tar.gz",
                "Pack RUN_DIR, its report, SHA256SUMS and a README for artifact evaluation "
                "(commit, requirements, durations, each claim with its figure) into "
                "<run-id>.tar.gz; print its path, size and sha256.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--output", metavar="FILE", help="the archive to write (default "
                   "<run-id>.tar.gz beside RUN_DIR)")
    p.add_argument("--ansible-events", action="store_true",
                   help="keep every Ansible per-event JSON file (by default only the failed "
                        "tasks' events; each playbook's output and status are always kept)")

    p = _parser(sub, "verify", "verify", "check a bundle: checksums and re-derived results",
                "Check every file of BUNDLE against SHA256SUMS, re-parse the raw outputs and "
                "recompute summary.csv. Exit 1 on any difference.")
    p.add_argument("bundle", metavar="BUNDLE")


def _add_inventory(sub: Any) -> None:
    sources = _group(sub, "inventory", "write or check a real-cluster inventory",
                     "Write an Ansible inventory for a testbed's nodes, or check one.",
                     "source", "SOURCE")

    def common(p: argparse.ArgumentParser, testbed: str) -> None:
        p.add_argument("--output", metavar="FILE", help="the inventory to write (default "
                       f"inventories/{testbed}/hosts.yml)")
        p.add_argument("--control-plane", metavar="NAME",
                       help="the node kubeadm init runs on (default: the first node)")
        p.add_argument("--key", metavar="FILE", help="SSH private key for every host")

    p = _parser(sources, "vagrant", "inventory", "from `vagrant ssh-config`",
                "Write inventories/vagrant/hosts.yml from `vagrant ssh-config` (run here) or "
                "FILE holding its output.")
    p.add_argument("file", nargs="?", metavar="FILE", help="saved `vagrant ssh-config` output")

    p = _parser(sources, "cloudlab", "inventory", "from a CloudLab experiment's manifest",
                "Write an inventory from the experiment's manifest RSpec (MANIFEST.xml, from "
                "the portal's Manifest tab or `geni-get manifest`).")
    p.add_argument("file", metavar="FILE", help="the manifest RSpec")
    common(p, "cloudlab")
    p.add_argument("--user", help="which member's login (when several)")
    p.add_argument("--lan", metavar="CIDR", help="the experiment LAN, when a node has "
                   "several experiment addresses")

    p = _parser(sources, "chameleon", "inventory", "from Chameleon's server list",
                "Write an inventory from FILE, the JSON of `openstack server list --long -f "
                "json` (or, without FILE, through openstacksdk).")
    p.add_argument("file", nargs="?", metavar="FILE", help="the server list as JSON")
    common(p, "chameleon")
    p.add_argument("--user", help="SSH user (default cc)")
    p.add_argument("--network", metavar="NAME", help="the experiment network")
    p.add_argument("--prefix", metavar="NAME", help="only servers named NAME*")

    p = _parser(sources, "check", "inventory", "validate an inventory",
                "Validate FILE: groups control_plane and workers, node_ip per host.")
    p.add_argument("file", metavar="FILE")


def _add_cluster(sub: Any) -> None:
    p = _parser(sub, "manifest", "manifest", "print a CNI's install manifest as cnilab "
                "applies it",
                "Print the pinned upstream install file of --cni at the profile's version, "
                "patched for --mode (the one pod CIDR, the mode, the MTU policy, the "
                "interface of each node_ip), with its source and sha256. The file is fetched "
                "from its pinned URL and checked against versions/manifests.lock, or read "
                "from --from FILE.")
    _cni_arguments(p, _modes(), ["on", "off", "never"])
    p.add_argument("--replace-kube-proxy", action="store_true",
                   help="the plugin serves Services (cilium, kube-router)")
    p.add_argument("--profile", default="current",
                   help="pin profile from versions/cni.yml (default current)")
    p.add_argument("--from", dest="from_file", metavar="FILE",
                   help="patch this local copy instead of fetching the pinned URL")
    p.add_argument("--inventory", metavar="FILE", help="take the node IPs from it")
    p.add_argument("--mtu", type=int, help="force the pod MTU (default: the plugin derives it)")

    actions = _group(sub, "cluster", "provision, reset or collect a real cluster",
                     "Provision, reset or collect the kubeadm cluster of an inventory. Each "
                     "action writes a record directory (printed).", "action", "ACTION")
    p = _parser(actions, "up", "cluster", "provision the cluster",
                "Preflight, then OS preparation, containerd, the Kubernetes packages, the "
                "clean node baseline, kubeadm init/join, the cluster check and collect.")
    _operation_arguments(p, preflight=True)
    p = _parser(actions, "reset", "cluster", "take the nodes back to their clean baseline",
                "kubeadm reset and the purge back to each node's clean baseline (fails on a "
                "dirty node).")
    _operation_arguments(p, preflight=False)
    p.add_argument("--reboot", action="store_true",
                   help="reboot every node after the purge, then compare again")
    p = _parser(actions, "collect", "cluster", "collect per-node facts",
                "Collect each node's facts (OS, kernel, NIC, CNI state) into the record.")
    _operation_arguments(p, preflight=False)

    for command, text, preflight in (
            ("deploy", "install one CNI plugin in one mode on a provisioned cluster, verify "
                       "it is up and in that mode (DaemonSets ready, the mode's datapath on "
                       "every node), then collect", False),
            ("switch", "move the nodes to another CNI: preflight, reset to the clean "
                       "baseline, kubeadm init/join again, deploy the plugin, collect", True)):
        p = _parser(sub, command, "cluster", text.split(",")[0], text + ".", action=command)
        _operation_arguments(p, preflight=preflight)
        _cni_arguments(p, _modes(), ["on", "off", "never"])
        p.add_argument("--replace-kube-proxy", action="store_true",
                       help="the plugin serves Services and kubeadm skips kube-proxy "
                            "(cilium, kube-router)")


def _add_doctor(sub: Any) -> None:
    p = _parser(sub, "doctor", "doctor", "check tools, versions and kernel capabilities",
                "Show what is installed, what the kernel supports, and what is missing with "
                "how to get it. Exit 1 if the netns lab cannot run. With --inventory: check "
                "every host over SSH (SSH, sudo, OS, kernel, Python, cgroup, the NIC of "
                "node_ip and its MTU, clock skew); exit 1 on any problem.")
    p.add_argument("--inventory", metavar="FILE", help="check the hosts of this inventory")
    p.add_argument("--profile", default="current",
                   help="pin profile whose requirements apply (with --inventory)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnilab", allow_abbrev=False,
        description="Compare Kubernetes CNI plugins reproducibly: real clusters via Ansible, "
                    "or the embedded netns lab (an emulation on one machine).")
    parser.add_argument("--version", action="version", version=f"cnilab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_validate, _add_lab, _add_run, _add_reproduce, _add_analysis,
                _add_inventory, _add_cluster, _add_doctor):
        add(sub)
    return parser
