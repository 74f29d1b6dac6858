"""The ``cnilab`` command line."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cnilab import paths
from cnilab.cli_parser import build_parser
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
    from cnilab.estimate import DEFAULT_OVERHEAD_S, estimate
    from cnilab.spec import every_variant, load_spec

    spec = load_spec(Path(args.spec))
    print(f"{args.spec}: ok")
    for variant, planned in every_variant(spec):
        label = f"--{variant}" if variant else "full"
        print(f"  {label:<11} {plan_summary(planned)}; {estimate(planned).text()}")
    print(f"  (durations at {DEFAULT_OVERHEAD_S} s per measurement beyond its test, as "
          "measured on a 2-core machine; repetitions beyond the minimum only for undecided "
          f"claims{'' if spec.claims else ', of which this spec states none'})")
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
    if getattr(args, "all", False) and instance:
        raise InputError("--all means every instance: give it without --lab netns:NAME")
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
    """The target's options of ``run`` and ``reproduce``, and their overrides."""
    return {"inventory": Path(args.inventory) if args.inventory else None,
            "profile": args.profile, "replace_kube_proxy": args.replace_kube_proxy,
            "replace_lab": args.replace_lab, "quiet": args.quiet,
            "overrides": {"repetitions": args.repetitions, "duration_s": args.duration}}


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
    from cnilab.bundle import bundle, sha256_file

    out = bundle(Path(args.run_dir), Path(args.output) if args.output else None,
                 ansible_events=args.ansible_events)
    size = out.stat().st_size
    print(out)
    # what a committee is told to expect: the archive's size and its own checksum
    print(f"{size} bytes ({size / (1 << 20):.1f} MiB), sha256 {sha256_file(out)}")
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
        out = Path(args.output) if args.output else \
            paths.project_root() / "inventories" / args.source / "hosts.yml"
        if getattr(args, "lan", None):
            try:
                ipaddress.ip_network(args.lan)
            except ValueError:
                raise InputError(f"--lan {args.lan}: not a CIDR (e.g. 10.10.1.0/24)") from None
        if args.source == "cloudlab":
            from cnilab.testbeds import cloudlab

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

    action = args.action
    reboot = getattr(args, "reboot", False)
    choice = operations.CniChoice.of(args.cni, args.mode, args.policy,
                                     args.replace_kube_proxy) \
        if getattr(args, "cni", None) else None
    operation = operations.prepare(action, Path(args.inventory), args.profile,
                                   Path(args.out) if args.out else None, choice)
    print(f"cnilab cluster {action}: {len(operation.nodes)} hosts, profile "
          f"{args.profile}; record in {operation.directory}", flush=True)
    checks = operations.run(operation, skip_preflight=getattr(args, "skip_preflight", False),
                            quiet=args.quiet,
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


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": _cmd_validate, "lab": _cmd_lab, "run": _cmd_run, "reproduce": _cmd_reproduce,
    "report": _cmd_report, "compare": _cmd_compare, "runs": _cmd_runs, "parse": _cmd_parse,
    "bundle": _cmd_bundle, "verify": _cmd_verify, "inventory": _cmd_inventory,
    "manifest": _cmd_manifest, "cluster": _cmd_cluster, "doctor": _cmd_doctor,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM and SIGHUP stop the work as Ctrl-C does (the engine brings the lab down and
    # records the run as interrupted), instead of killing the process mid-measurement
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    try:
        status: int = HANDLERS[args.handler](args)
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
