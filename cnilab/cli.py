"""The ``cnilab`` command line."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnilab import __version__, paths
from cnilab.errors import (
    CapabilityError,
    CnilabError,
    InputError,
    Interrupted,
    SpecError,
    Terminated,
)

EXIT_INPUT = 2


def _cmd_validate(args: argparse.Namespace) -> int:
    from cnilab.engine_support import plan_summary
    from cnilab.spec import load_spec

    spec = load_spec(Path(args.spec))
    print(f"{args.spec}: ok — {plan_summary(spec)}")
    return 0


def _lab_progress(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from cnilab.ansible_engine import Progress

    return Progress(quiet=getattr(args, "quiet", False))


def _cmd_lab(args: argparse.Namespace) -> int:
    from cnilab.targets import parse_lab

    kind, instance = parse_lab(args.lab)
    if kind != "netns":
        raise CnilabError(f"--lab {args.lab}: `cnilab lab` manages the netns lab; a cluster is "
                          "managed with `cnilab cluster`")
    if args.all and (args.action == "up" or instance):
        raise InputError("--all goes with `lab down` or `lab status` and no instance name")
    if args.action in ("up", "down") and os.geteuid() != 0:
        raise CapabilityError(f"cnilab lab {args.action} needs root (network namespaces); "
                              "run it with sudo")
    if args.action == "up":
        return _lab_up(args, instance)
    if args.action == "down":
        return _lab_down(args, instance)
    return _lab_status(args, instance)


def _lab_up(args: argparse.Namespace, instance: str) -> int:
    from cnilab.ansible_engine import run_playbook
    from cnilab.lab import core, lock, status
    from cnilab.lab.plan import make_plan

    if not args.cni or not args.mode:
        raise SpecError("cnilab lab up", None, "--cni and --mode are required")
    plan = make_plan(args.cni, args.mode, args.hosts, args.pods_per_host,
                     args.policy == "on", instance, args.offload == "on")
    with lock.holding(_command_line(), instance):
        core.preflight(plan)
        try:
            run_playbook("lab-netns.yml", private_data_dir=_ansible_dir(instance),
                         extravars={"lab_netns_state": "present",
                                    "lab_netns_plan": plan.to_dict()},
                         progress=_lab_progress(args), ident="lab-up",
                         env=core.builder_env(plan.prefix))
        except Interrupted:
            core.down(plan.prefix)        # a cancelled build leaves no half-built lab
            raise
        lock.record_owner("`cnilab lab up`", instance)
    print(status.format_status(status.lab_status(plan)))
    return 0


def _lab_down(args: argparse.Namespace, instance: str) -> int:
    """Bring down one instance and the mode labs a study keeps in it (NAME.K), or every
    instance with --all; each under its own lock, so a busy one is refused by name."""
    from cnilab.ansible_engine import run_playbook
    from cnilab.lab import core, lock
    from cnilab.lab.plan import prefix_of

    targets = core.instances() if args.all else (core.family(instance) or [instance])
    with contextlib.ExitStack() as held:
        held.enter_context(lock.holding(_command_line(), instance))
        for name in targets:
            if name != instance:
                held.enter_context(lock.holding(_command_line(), name))
        removed = [f"netns:{name}" if name else "netns" for name in targets
                   if any(core.leftovers(prefix_of(name)).values())]
        # all of them in one playbook run: Ansible's start-up once, not once per instance
        run_playbook("lab-netns.yml", private_data_dir=_ansible_dir(instance),
                     extravars={"lab_netns_state": "absent",
                                "lab_netns_prefixes": [prefix_of(n) for n in targets]},
                     progress=_lab_progress(args), ident="lab-down")
    print(f"removed: {', '.join(removed)}" if removed else "no netns lab was up")
    return 0


def _lab_status(args: argparse.Namespace, instance: str) -> int:
    from cnilab.lab import core, idle, status
    from cnilab.lab.plan import load_saved_plan

    names = core.instances() if args.all else core.family(instance) or [instance]
    found = {}
    for name in names:
        saved = load_saved_plan(name)
        if saved is None:
            continue
        data = status.lab_status(saved)
        data["idle_cpu"] = idle.measure(core.lab_namespaces(saved.prefix)).as_record()
        found[name] = data
    if args.json:
        one = not args.all and list(found) in ([instance], [])
        if one:
            print(json.dumps(found[instance] if found else {"up": False}, indent=2))
        else:
            print(json.dumps({"instances": found, "up": bool(found)}, indent=2))
        return 0
    if not found:
        print("no netns lab is up")
    for name, data in found.items():
        print(f"== netns:{name}" if name else "== netns")
        print(status.format_status(data))
    return 0


def _ansible_dir(instance: str) -> Path:
    """Ansible's records of `lab up`/`down` of one instance (kept apart: two instances
    may be handled at once)."""
    return paths.lab_state_dir() / ("ansible" if not instance else f"ansible.{instance}")


def _command_line() -> str:
    return " ".join(["cnilab", *sys.argv[1:]])


def _run_status(outcome: Any) -> int:
    """Exit status of a run: 1 when any measurement failed (they are all recorded)."""
    if outcome.failures:
        print(f"cnilab: {len(outcome.failures)} measurement(s) failed; see "
              f"{outcome.run.results_path}", file=sys.stderr)
        return 1
    return 0


def _cluster_options(args: argparse.Namespace) -> dict[str, Any]:
    """The real-cluster target's options of ``run`` and ``reproduce``."""
    return {"inventory": Path(args.inventory) if args.inventory else None,
            "profile": args.profile, "replace_kube_proxy": args.replace_kube_proxy,
            "replace_lab": args.replace_lab}


def _target_arguments(p: argparse.ArgumentParser) -> None:
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


def _cmd_run(args: argparse.Namespace) -> int:
    from cnilab.engine_support import start_or_resume

    outcome, report = start_or_resume(
        Path(args.spec), args.lab, Path(args.out) if args.out else None,
        Path(args.resume) if args.resume else None, with_report=args.report,
        argv=["cnilab", *sys.argv[1:]], **_cluster_options(args),
    )
    print(outcome.run.path)
    if report is not None:
        print(report)
    return _run_status(outcome)


def _cmd_compare(args: argparse.Namespace) -> int:
    from cnilab.compare import compare, format_table, write_html

    pairs = compare([Path(p) for p in args.runs])
    print("\n\n".join(format_table(a, b, rows, normalised) for a, b, rows, normalised in pairs))
    if args.html:
        write_html(Path(args.html), pairs)
        print(f"html: {args.html}")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    from cnilab import paths
    from cnilab.runs import format_runs, list_runs

    parent = Path(args.dir) if args.dir else paths.default_runs_dir()
    if not parent.is_dir():
        raise InputError(f"{parent}: no such directory (run directories live under it)")
    print(format_runs(list_runs(parent)))
    return 0


def _cmd_parse(args: argparse.Namespace) -> int:
    from cnilab.bench.parsers import ParseError
    from cnilab.bench.parsers import iperf3 as iperf3_parser
    from cnilab.bench.parsers import netperf as netperf_parser
    from cnilab.errors import InputError

    parsers = {"iperf3": iperf3_parser.parse, "netperf": netperf_parser.parse}
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{args.file}: cannot read: {exc}") from None
    try:
        metrics = parsers[args.tool](text)
    except ParseError as exc:
        raise InputError(f"{args.file}: {exc}") from None
    print(json.dumps({"tool": args.tool, "file": args.file, "metrics": metrics}, indent=2,
                     sort_keys=True))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from cnilab.report import write_report

    print(write_report(Path(args.run_dir)))
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from cnilab.engine_support import start_or_resume
    from cnilab.errors import InputError
    from cnilab.report import verdict_table

    given = Path(args.study)
    spec = given if given.suffix in (".yaml", ".yml") else \
        paths.project_root() / "experiments" / f"{args.study}.yaml"
    if not spec.is_file():
        known = ", ".join(sorted(p.stem for p in (paths.project_root() / "experiments")
                                 .glob("*.yaml")))
        raise InputError(f"cnilab reproduce: no study '{args.study}' (known: {known})")
    outcome, report = start_or_resume(
        spec, args.lab, Path(args.out) if args.out else None,
        Path(args.resume) if args.resume else None, with_report=True,
        argv=["cnilab", *sys.argv[1:]], variant=args.variant, **_cluster_options(args))
    assert report is not None
    print(verdict_table(outcome.run.path))      # the answer, then where the detail is
    print(f"report: {report}")
    return _run_status(outcome)


def _cmd_bundle(args: argparse.Namespace) -> int:
    import hashlib

    from cnilab.bundle import bundle

    out = bundle(Path(args.run_dir), Path(args.out) if args.out else None)
    digest = hashlib.sha256()
    with out.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    size = out.stat().st_size
    print(out)
    # what a committee is told to expect: the archive's size and its own checksum
    print(f"{size} bytes ({size / (1 << 20):.1f} MiB), sha256 {digest.hexdigest()}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from cnilab.bundle import verify

    result = verify(Path(args.bundle))
    for problem in result.problems:
        print(f"{args.bundle}: {problem}", file=sys.stderr)
    if result.ok:
        print(f"{args.bundle}: verified — {result.files} files match SHA256SUMS, "
              f"{result.reparsed} measurements re-parsed from raw outputs, summary.csv "
              "recomputed identically")
        return 0
    return 1


def _cmd_inventory(args: argparse.Namespace) -> int:
    from cnilab.inventory import load_inventory, write_inventory, write_vagrant_inventory

    if args.source == "vagrant":
        out = write_vagrant_inventory(Path(args.file) if args.file else None)
        print(out)
        return 0
    if args.source in ("cloudlab", "chameleon"):
        out = Path(args.out) if args.out else \
            paths.project_root() / "inventories" / args.source / "hosts.yml"
        if args.lan:
            try:
                ipaddress.ip_network(args.lan)
            except ValueError:
                raise InputError(f"--lan {args.lan}: not a CIDR (e.g. 10.10.1.0/24)") from None
        if args.source == "cloudlab":
            from cnilab.testbeds import cloudlab

            if not args.file:
                raise InputError("cnilab inventory cloudlab: give the experiment's MANIFEST.xml")
            inventory = cloudlab.cloudlab_inventory(
                cloudlab.read_manifest(Path(args.file)), args.file, user=args.user,
                control_plane=args.control_plane, lan=args.lan, key_file=args.key)
            origin = f"Written by `cnilab inventory cloudlab` from {args.file}."
        else:
            from cnilab.testbeds import chameleon

            data, source = chameleon.load_server_list(Path(args.file) if args.file else None)
            inventory = chameleon.chameleon_inventory(
                data, source, network=args.network, prefix=args.prefix,
                control_plane=args.control_plane, user=args.user or chameleon.DEFAULT_USER,
                key_file=args.key)
            origin = f"Written by `cnilab inventory chameleon` from {source}."
        for line in inventory.left_out:
            print(f"cnilab: left out {line}", file=sys.stderr)
        written = write_inventory(inventory.inventory, out, origin)
        for node in load_inventory(written):
            print(f"{node.name:12} {node.group:14} node_ip {node.node_ip:15} via "
                  f"{node.vars.get('ansible_user')}@{node.address}")
        print(written)
        return 0
    if not args.file:
        raise SpecError("cnilab inventory check", None, "give the inventory FILE to check")
    nodes = load_inventory(Path(args.file))
    for node in nodes:
        print(f"{node.name:12} {node.group:14} node_ip {node.node_ip}")
    print(f"{args.file}: ok — {len(nodes)} hosts")
    return 0


def _cmd_manifest(args: argparse.Namespace) -> int:
    import yaml

    from cnilab.cni.base import ClusterNetwork, policy_options
    from cnilab.inventory import load_inventory
    from cnilab.manifests.render import render
    from cnilab.network import POD_CIDR

    if args.inventory:
        node_ips = tuple(n.node_ip for n in load_inventory(Path(args.inventory)))
        origin = f"from {args.inventory}"
    else:
        network = yaml.safe_load((paths.project_root() / "inventories" / "vagrant" /
                                  "network.yml").read_text())
        first = int(network["control_plane_octet"])
        node_ips = tuple(f"{network['prefix']}{first + i}" for i in range(3))
        origin = "the Vagrant lab's addresses; pass --inventory for yours"
    if args.mtu is not None and not 576 <= args.mtu <= 9000:
        raise InputError(f"--mtu {args.mtu}: between 576 and 9000")
    cluster = ClusterNetwork(pod_cidr=POD_CIDR, node_ips=node_ips, mtu=args.mtu)
    rendered = render(args.cni, args.mode, args.profile, cluster,
                      from_file=Path(args.from_file) if args.from_file else None,
                      options=policy_options(args.policy, args.replace_kube_proxy))
    sys.stdout.write(rendered.text(cluster, origin))
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    from cnilab.cluster import operations

    action = getattr(args, "action", None) or args.command
    reboot = getattr(args, "reboot", False)
    if reboot and action != "reset":
        raise InputError("--reboot belongs to `cnilab cluster reset`")
    choice = operations.CniChoice.of(args.cni, args.mode, args.policy,
                                     args.replace_kube_proxy) \
        if getattr(args, "cni", None) else None
    operation = operations.prepare(action, Path(args.inventory), args.profile,
                                   Path(args.out) if args.out else None, choice)
    args.action = action
    print(f"cnilab cluster {args.action}: {len(operation.nodes)} hosts, profile "
          f"{args.profile}; record in {operation.directory}", flush=True)
    checks = operations.run(operation, skip_preflight=args.skip_preflight, quiet=args.quiet,
                            extravars={"node_reset_reboot": True} if reboot else None)
    for check in checks:
        print(check.render())
    if choice is not None:   # deploy, switch: the plugin must carry pod traffic
        from cnilab.targets.cluster import ClusterTarget

        gate = ClusterTarget(Path(args.inventory), args.profile).verify_pod_network()
        (operation.directory / "pod-network.json").write_text(
            json.dumps(gate, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"pod network: {gate['readiness_gate']}")
    print(operation.directory)
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from cnilab.doctor import diagnose, render
    from cnilab.pins import load_pins

    if args.inventory:
        from cnilab.cluster.operations import cgroup_required
        from cnilab.cluster.preflight import preflight
        from cnilab.inventory import load_inventory

        checks = preflight(load_inventory(Path(args.inventory)),
                           cgroup_required=cgroup_required(args.profile))
        for check in checks:
            print(check.render())
        failed = sum(1 for c in checks if not c.ok)
        print(f"{args.inventory}: {failed} problem(s)" if failed else
              f"{args.inventory}: every host passed")
        return 1 if failed else 0
    findings = diagnose(load_pins())
    print(render(findings))
    return 1 if any(f.level == "missing" for f in findings) else 0


def _cni_arguments(p: argparse.ArgumentParser) -> None:
    """Which plugin, in which mode (manifest, deploy, switch)."""
    p.add_argument("--cni", required=True)
    p.add_argument("--mode", required=True)
    p.add_argument("--policy", choices=["on", "off", "never"], default="off",
                   help="on: network policies enforced (plugins that have it); off: no "
                        "policies, the plugin's default engine; never: cilium's policy "
                        "engine switched off (policyEnforcementMode never)")
    p.add_argument("--replace-kube-proxy", action="store_true",
                   help="the plugin serves Services and kubeadm skips kube-proxy (cilium, "
                        "kube-router)")


def _operation_arguments(p: argparse.ArgumentParser) -> None:
    """What every operation on real nodes takes (cluster, deploy, switch)."""
    p.add_argument("--inventory", required=True, metavar="FILE",
                   help="Ansible inventory (control_plane/workers, node_ip per host)")
    p.add_argument("--profile", default="current",
                   help="pin profile from versions/kubernetes.yml (current, paper-2020)")
    p.add_argument("--out", metavar="DIR", help="parent of the record directory "
                   "(default ./runs)")
    p.add_argument("--skip-preflight", action="store_true",
                   help="do not run the SSH preflight first (up, switch)")
    p.add_argument("--quiet", action="store_true", help="no Ansible progress")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnilab",
        description="Compare Kubernetes CNI plugins reproducibly: real clusters via Ansible, "
                    "or the embedded netns lab (an emulation on one machine).")
    parser.add_argument("--version", action="version", version=f"cnilab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check an experiment spec",
                       description="Validate an experiment spec; errors are FILE:LINE: message, "
                                   "exit status 2.")
    p.add_argument("spec", metavar="SPEC", help="experiment YAML file")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("lab", help="bring the netns lab up or down, or show it",
                       description="Manage the embedded netns lab (hosts and pods as network "
                                   "namespaces, real CNI plugins). Needs root.")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--lab", default="netns", metavar="netns[:NAME]",
                   help="the netns lab (default), or its instance NAME: instances stand side "
                        "by side (a study keeps each mode in NAME.K)")
    p.add_argument("--all", action="store_true",
                   help="down/status: every instance on this machine")
    p.add_argument("--cni", help="CNI plugin (up)")
    p.add_argument("--mode", help="plugin mode (up)")
    p.add_argument("--hosts", type=int, default=2, help="emulated hosts (up; default 2)")
    p.add_argument("--pods-per-host", type=int, default=2, help="pods per host (up; default 2)")
    p.add_argument("--policy", choices=["on", "off"], default="off",
                   help="network policy enforcement (up; calico modes)")
    p.add_argument("--offload", choices=["on", "off"], default="on",
                   help="tunnel segmentation offload of the hosts' underlay devices (up; "
                        "VXLAN modes): off makes the kernel segment in software, as on a "
                        "NIC without VXLAN offload")
    p.add_argument("--json", action="store_true", help="status as JSON")
    p.add_argument("--quiet", action="store_true", help="no Ansible progress")
    p.set_defaults(func=_cmd_lab)

    p = sub.add_parser("run", help="run an experiment into a run directory",
                       description="Run every measurement of SPEC on the chosen lab, writing "
                                   "runs/<run-id>/ as measurements finish. Prints the run "
                                   "directory.")
    p.add_argument("spec", metavar="SPEC", help="experiment YAML file")
    _target_arguments(p)
    p.add_argument("--out", metavar="DIR", help="parent directory for run directories "
                   "(default ./runs)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed or interrupted run")
    p.add_argument("--report", action="store_true", help="write the report when done")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("compare", help="compare runs cell by cell",
                       description="Put runs side by side: for every cell the first run and "
                                   "another share, both means, their ratio with a 95 % "
                                   "interval and whether the difference is significant. Runs "
                                   "on different targets are compared as ratios to each "
                                   "run's own underlay.")
    p.add_argument("runs", metavar="RUN_DIR", nargs="+", help="run directories (2 or more)")
    p.add_argument("--html", metavar="FILE", help="also write the tables and paired bar "
                   "figures to this HTML file")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("runs", help="list run directories, their state and how to resume",
                       description="List the run directories under DIR (default ./runs or "
                                   "$CNILAB_RUNS_DIR): spec, target, start, state and "
                                   "progress, with the command that resumes an interrupted "
                                   "one.")
    p.add_argument("dir", metavar="DIR", nargs="?", help="parent of the run directories")
    p.set_defaults(func=_cmd_runs)

    p = sub.add_parser("parse", help="parse a raw iperf3 or netperf output file",
                       description="Print, as JSON, the metrics the engine would store for a "
                                   "raw tool output (iperf3 -J, netperf omni -k), through the "
                                   "same parser. Invalid input: one-line error, exit 2.")
    p.add_argument("tool", choices=["iperf3", "netperf"])
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=_cmd_parse)

    p = sub.add_parser("report", help="write the report, figures and summary of a run",
                       description="Regenerate report.html, report.md, summary.csv, "
                                   "claims.json and figures/ from a run directory alone.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("reproduce", help="run a study, report it, print the claims verdicts",
                       description="Run experiments/STUDY.yaml (e.g. lanman2020), write its "
                                   "report and print the verdict of each of the paper's "
                                   "claims. --quick runs the spec's smoke variant, "
                                   "--standard the variant sized to decide the claims in a "
                                   "stated time.")
    p.add_argument("study", metavar="STUDY", help="study name, e.g. lanman2020 "
                   "(experiments/STUDY.yaml), or a spec file path")
    _target_arguments(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--quick", dest="variant", action="store_const", const="quick",
                       default="", help="the spec's short smoke variant")
    which.add_argument("--standard", dest="variant", action="store_const", const="standard",
                       help="the spec's standard variant (decides the claims in its stated "
                            "time)")
    p.add_argument("--out", metavar="DIR", help="parent directory for run directories")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed or interrupted run")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("bundle", help="pack a run into a verifiable .tar.gz",
                       description="Pack RUN_DIR, its report, SHA256SUMS and a README mapping "
                                   "each claim to its figure into <run-id>.tar.gz.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", metavar="FILE", help="bundle path (default beside RUN_DIR)")
    p.set_defaults(func=_cmd_bundle)

    p = sub.add_parser("verify", help="check a bundle: checksums and re-derived results",
                       description="Check every file of BUNDLE against SHA256SUMS, re-parse "
                                   "the raw outputs and recompute summary.csv. Exit 1 on any "
                                   "difference.")
    p.add_argument("bundle", metavar="BUNDLE")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("inventory", help="write or check a real-cluster inventory",
                       description="vagrant: write inventories/vagrant/hosts.yml from "
                                   "`vagrant ssh-config` (or FILE holding its output). "
                                   "cloudlab: write inventories/cloudlab/hosts.yml from the "
                                   "experiment's manifest RSpec FILE. chameleon: write "
                                   "inventories/chameleon/hosts.yml from FILE, the JSON of "
                                   "`openstack server list --long -f json` (or, without FILE, "
                                   "through openstacksdk). check: validate FILE (groups, "
                                   "node_ip per host).")
    p.add_argument("source", choices=["vagrant", "cloudlab", "chameleon", "check"])
    p.add_argument("file", nargs="?", metavar="FILE")
    p.add_argument("--out", metavar="FILE", help="cloudlab/chameleon: where to write "
                   "(default inventories/<testbed>/hosts.yml)")
    p.add_argument("--user", help="cloudlab: which member's login (when several); "
                   "chameleon: SSH user (default cc)")
    p.add_argument("--control-plane", metavar="NAME",
                   help="the node kubeadm init runs on (default: the first node)")
    p.add_argument("--lan", metavar="CIDR", help="cloudlab: the experiment LAN, when a node "
                   "has several experiment addresses")
    p.add_argument("--network", metavar="NAME", help="chameleon: the experiment network")
    p.add_argument("--prefix", metavar="NAME", help="chameleon: only servers named NAME*")
    p.add_argument("--key", metavar="FILE", help="SSH private key for every host")
    p.set_defaults(func=_cmd_inventory)

    p = sub.add_parser("manifest", help="print a CNI's install manifest as cnilab applies it",
                       description="Print the pinned upstream install file of --cni at the "
                                   "profile's version, patched for --mode (the one pod CIDR, "
                                   "the mode, the MTU policy, the interface of each node_ip), "
                                   "with its source and sha256. The file is fetched from its "
                                   "pinned URL and checked against versions/manifests.lock, "
                                   "or read from --from FILE.")
    _cni_arguments(p)
    p.add_argument("--profile", default="current",
                   help="pin profile from versions/cni.yml (current, paper-2020)")
    p.add_argument("--from", dest="from_file", metavar="FILE",
                   help="patch this local copy instead of fetching the pinned URL")
    p.add_argument("--inventory", metavar="FILE", help="take the node IPs from it")
    p.add_argument("--mtu", type=int, help="force the pod MTU (default: the plugin derives it)")
    p.set_defaults(func=_cmd_manifest)

    p = sub.add_parser("cluster", help="provision, reset or collect a real cluster",
                       description="up: preflight, then OS preparation, containerd, the "
                                   "Kubernetes packages, the clean node baseline, kubeadm "
                                   "init/join, the cluster check and collect. reset: kubeadm "
                                   "reset and the purge back to each node's clean baseline "
                                   "(fails on a dirty node). collect: per-node facts. Each "
                                   "run writes a record directory (printed).")
    p.add_argument("action", choices=["up", "reset", "collect"])
    _operation_arguments(p)
    p.add_argument("--reboot", action="store_true",
                   help="reset: reboot every node after the purge, then compare again")
    p.set_defaults(func=_cmd_cluster)

    for command, text in (
            ("deploy", "install one CNI plugin in one mode on a provisioned cluster, verify "
                       "it is up and in that mode (DaemonSets ready, the mode's datapath on "
                       "every node), then collect"),
            ("switch", "move the nodes to another CNI: reset to the clean baseline, kubeadm "
                       "init/join again, deploy the plugin, collect")):
        p = sub.add_parser(command, help=text.split(",")[0], description=text + ".")
        _operation_arguments(p)
        _cni_arguments(p)
        p.set_defaults(func=_cmd_cluster)

    p = sub.add_parser("doctor", help="check tools, versions and kernel capabilities",
                       description="Show what is installed, what the kernel supports, and what "
                                   "is missing with how to get it. Exit 1 if the netns lab "
                                   "cannot run. With --inventory: check every host over SSH "
                                   "(SSH, sudo, OS, kernel, Python, cgroup, the NIC of "
                                   "node_ip and its MTU, clock skew); exit 1 on any problem.")
    p.add_argument("--inventory", metavar="FILE", help="check the hosts of this inventory")
    p.add_argument("--profile", default="current",
                   help="pin profile whose requirements apply (with --inventory)")
    p.set_defaults(func=_cmd_doctor)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM and SIGHUP stop the work as Ctrl-C does (the engine brings the lab down and
    # records the run as interrupted), instead of killing the process mid-measurement
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    try:
        status: int = args.func(args)
        return status
    except SpecError as exc:
        print(str(exc), file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"cnilab: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
    except CnilabError as exc:
        print(f"cnilab: {exc}", file=sys.stderr)
        return exc.exit_status


if __name__ == "__main__":
    sys.exit(main())
