"""Experiment specs: loading, validation with FILE:LINE errors, and expansion into cells.

A spec is one YAML file under ``experiments/``. Validation is strict (unknown
keys are errors, every value is type- and range-checked) because a typo that
silently falls back to a default produces a plausible but wrong experiment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnilab.bench import sweeps
from cnilab.bench.placements import PLACEMENTS
from cnilab.bench.suites import NODE_KINDS, STARTUP_PLACEMENT, SUITES, Suite
from cnilab.claims import Claim, parse_claims
from cnilab.decisions import Design
from cnilab.errors import InputError, SpecError
from cnilab.modes import catalog, mode_key
from cnilab.network import HOSTS_RANGE, PODS_PER_HOST_RANGE
from cnilab.reference import PaperValue, parse_paper_values
from cnilab.sequential import SPENDING
from cnilab.yamlpos import PosDict, PosList, line_of, load_file, load_text

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TOP_KEYS = {"name", "description", "lab", "matrix", "placements", "tests", "repetitions",
            "warmup", "cpu_pinning", "interleave", "claims", "decisions", "paper_values", *(
                "quick", "standard")}
# the variants a spec may offer beside its full form (`--quick`, `--standard`)
VARIANTS = ("quick", "standard")
VARIANT_KEYS = {"repetitions", "warmup", "duration_s", "sweeps", "matrix", "params",
                "placements"}
DECISION_KEYS = {"alpha", "spending", "margin", "margins"}
PINNING = ["auto", "off"]
INTERLEAVE = ["within-mode", "across-modes"]
ADAPTIVE_KEYS = {"min", "max", "ci_target"}
SEQUENTIAL_KEYS = {"min", "max"}     # with claims: the claims decide (cnilab/decisions.py)
LAB_KEYS = {"hosts", "pods_per_host"}
MATRIX_KEYS = {"cni", "mode", "policy", "offload"}
TEST_KEYS = {"suite", "params", "sweep", "placements"}
BACKGROUND_MIN_PODS_INTRA = 4   # the background pair is a second pod pair on the same host
MAX_REPETITIONS = 1000


@dataclass(frozen=True)
class ModeRef:
    """One matrix entry: a plugin, its mode, whether network policy is enforced, and
    whether the NIC offloads tunnel segmentation (the paper's "Flannel-off" has it off)."""

    cni: str
    mode: str
    policy: bool = False
    offload: bool = True

    @property
    def key(self) -> str:
        return mode_key(self.cni, self.mode, self.policy, self.offload)

    @classmethod
    def of_record(cls, cell: dict[str, Any]) -> ModeRef:
        """The matrix entry of a record's ``cell`` (records before ``offload`` had it on)."""
        return cls(str(cell["cni"]), str(cell["mode"]), bool(cell.get("policy")),
                   cell.get("offload", True) is not False)


@dataclass(frozen=True)
class TestSpec:
    suite: str
    params: dict[str, Any]
    sweep: dict[str, Any] = field(default_factory=dict)
    placements: tuple[str, ...] = ()   # this test only at these (default: the spec's)


@dataclass(frozen=True)
class Cell:
    """One combination of the matrix; repeated ``repetitions`` times."""

    cni: str
    mode: str
    placement: str
    suite: str
    params: tuple[tuple[str, Any], ...]
    policy: bool = False
    condition: tuple[tuple[str, Any], ...] = ()   # sweep values held during the measurement
    offload: bool = True

    @property
    def mode_key(self) -> str:
        return ModeRef(self.cni, self.mode, self.policy, self.offload).key

    @property
    def cell_id(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in self.params)
        cid = f"{self.mode_key}/{self.placement}/{self.suite}/{params}"
        if self.condition:
            cid += "/" + ",".join(f"{k}={v}" for k, v in self.condition)
        return cid

    def params_dict(self) -> dict[str, Any]:
        return dict(self.params)

    def as_record(self) -> dict[str, Any]:
        return {"cni": self.cni, "mode": self.mode, "policy": self.policy,
                "offload": self.offload, "placement": self.placement, "suite": self.suite,
                "params": self.params_dict(), "condition": dict(self.condition)}


@dataclass(frozen=True)
class Spec:
    path: str
    text: str
    name: str
    description: str
    hosts: int
    pods_per_host: int
    matrix: tuple[ModeRef, ...]
    placements: tuple[str, ...]
    tests: tuple[TestSpec, ...]
    repetitions: int
    sha256: str = field(default="")
    warmup: int = 1                 # discarded measurements per cell before the repetitions
    cpu_pinning: str = "auto"       # auto | off (see cnilab/bench/pinning.py)
    # Repetitions beyond ``repetitions`` (the minimum), up to max_repetitions, go either
    # to cells whose 95 % CI half-width exceeds ci_target x mean, or, in a spec with
    # claims and no ci_target, to the cells of claims not yet decided (sequential).
    max_repetitions: int = 0        # 0 = fixed (= repetitions)
    ci_target: float | None = None
    interleave: str = "within-mode"  # within-mode | across-modes
    claims: tuple[Claim, ...] = ()   # the paper's conclusions as checks (cnilab/claims.py)
    decisions: Design = field(default_factory=Design)   # alpha, spending, margins
    variant: str = ""                # "", or the spec variant applied (quick, standard)
    # what the paper reports, as comparisons between modes (cnilab/reference.py)
    paper_values: tuple[PaperValue, ...] = ()
    # the command line's --repetitions / --duration, recorded with the run
    overrides: tuple[tuple[str, int], ...] = ()
    # the variants the spec file offers (a subset of VARIANTS), whichever one this is
    variants: tuple[str, ...] = ()

    @property
    def quick(self) -> bool:
        return self.variant == "quick"

    @property
    def sequential(self) -> bool:
        """Claims decide which cells get repetitions beyond the minimum."""
        return (self.ci_target is None and bool(self.claims)
                and self.max_repetitions > self.repetitions)

    @property
    def adaptive(self) -> bool:
        return self.ci_target is not None or self.sequential

    @property
    def repetition_cap(self) -> int:
        return self.max_repetitions if self.adaptive else self.repetitions

    def design(self) -> Design:
        """How the claims are decided: the spec's decisions block, its first look (the
        minimum repetitions) and cap, and whether its rounds pair across modes."""
        return dataclasses.replace(self.decisions, first_look=self.repetitions,
                                   cap=self.repetition_cap,
                                   blocked=self.interleave == "across-modes")

    def cells(self) -> list[Cell]:
        """Every (mode, placement, test, parameter and sweep combination), in a stable order.

        Start-up tests have no traffic placement: one cell per mode and parameter set.
        """
        out: dict[str, Cell] = {}   # by cell id: equal conditions collapse into one cell
        for ref in self.matrix:
            for test in self.tests:
                placements = ((STARTUP_PLACEMENT,) if SUITES[test.suite].kind in NODE_KINDS
                              else test.placements or self.placements)
                for combo in expand_params(test.params):
                    for condition in expand_params(test.sweep):
                        for placement in placements:
                            cell = Cell(ref.cni, ref.mode, placement, test.suite, combo,
                                        ref.policy, sweeps.normalize(condition), ref.offload)
                            out.setdefault(cell.cell_id, cell)
        return list(out.values())


def expand_params(params: dict[str, Any]) -> list[tuple[tuple[str, Any], ...]]:
    """Cross product of list-valued parameters (a scalar is a one-value list)."""
    names = sorted(params)
    values = [params[n] if isinstance(params[n], list) else [params[n]] for n in names]
    return [tuple(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


class _Validator:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, container: Any, key: str | int | None, message: str) -> SpecError:
        return SpecError(self.path, line_of(container, key), message)

    def mapping(self, value: Any, where: Any, key: str | int | None, field_name: str,
                allowed: set[str], required: set[str]) -> PosDict:
        if not isinstance(value, PosDict):
            raise self.fail(where, key, f"'{field_name}' must be a mapping")
        for k in value:
            if k not in allowed:
                raise self.fail(value, k, f"unknown key '{k}' in {field_name} "
                                f"(allowed: {', '.join(sorted(allowed))})")
        for k in sorted(required):
            if k not in value:
                raise self.fail(value, None, f"'{field_name}' is missing required key '{k}'")
        return value

    def sequence(self, value: Any, where: Any, key: str, field_name: str) -> PosList:
        if not isinstance(value, PosList) or not value:
            raise self.fail(where, key, f"'{field_name}' must be a non-empty list")
        return value

    def integer(self, value: Any, where: Any, key: str, field_name: str, lo: int,
                hi: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise self.fail(where, key, f"'{field_name}' must be an integer from {lo} to {hi}, "
                            f"got {value!r}")
        return value

    def string(self, value: Any, where: Any, key: str | int, field_name: str,
               choices: list[str] | None = None) -> str:
        if not isinstance(value, str):
            raise self.fail(where, key, f"'{field_name}' must be a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(where, key, f"'{field_name}' must be one of {', '.join(choices)}; "
                            f"got '{value}'")
        return value


def _on_off(v: _Validator, item: PosDict, key: str, where: str) -> bool:
    """A matrix entry's ``on``/``off`` switch (YAML 1.1 reads a bare on/off as a boolean;
    both spellings are accepted)."""
    raw = item[key]
    words = {True: True, False: False, "on": True, "off": False}
    if not isinstance(raw, bool | str) or raw not in words:
        raise v.fail(item, key, f"'{where}.{key}' must be on or off, got {raw!r}")
    return words[raw]


def _parse_lab(v: _Validator, top: PosDict) -> tuple[int, int]:
    """``lab: {hosts, pods_per_host}``: the topology the netns lab builds."""
    hosts, pods = 2, 2
    if "lab" in top:
        lab = v.mapping(top["lab"], top, "lab", "lab", LAB_KEYS, set())
        if "hosts" in lab:
            hosts = v.integer(lab["hosts"], lab, "hosts", "lab.hosts", *HOSTS_RANGE)
        if "pods_per_host" in lab:
            pods = v.integer(lab["pods_per_host"], lab, "pods_per_host", "lab.pods_per_host",
                             *PODS_PER_HOST_RANGE)
    return hosts, pods


def _parse_matrix(v: _Validator, top: PosDict) -> list[ModeRef]:
    """``matrix``: the modes compared, each a plugin, a mode of it and its switches."""
    table = catalog()
    matrix: list[ModeRef] = []
    entries = v.sequence(top["matrix"], top, "matrix", "matrix")
    for i, entry in enumerate(entries):
        where = f"matrix[{i}]"
        item = v.mapping(entry, entries, i, where, MATRIX_KEYS, {"cni", "mode"})
        cni = v.string(item["cni"], item, "cni", f"{where}.cni", sorted(table))
        mode = v.string(item["mode"], item, "mode", f"{where}.mode", sorted(table[cni]))
        policy = _on_off(v, item, "policy", where) if "policy" in item else False
        allowed = table[cni][mode].policy_options
        if "policy" in item and policy not in allowed:
            raise v.fail(item, "policy", f"'{where}.policy': {cni}/{mode} supports only "
                         f"policy {', '.join('on' if p else 'off' for p in allowed)}")
        offload = _on_off(v, item, "offload", where) if "offload" in item else True
        if offload not in table[cni][mode].offload_options:
            raise v.fail(item, "offload", f"'{where}.offload': {cni}/{mode} sends no "
                         "UDP tunnel packets, so it has no tunnel offload to switch off")
        ref = ModeRef(cni, mode, policy, offload)
        if ref in matrix:
            raise v.fail(item, None, f"{where}: {ref.key} is listed twice")
        matrix.append(ref)
    return matrix


def _parse_placements(v: _Validator, top: PosDict) -> list[str]:
    placements: list[str] = []
    plist = v.sequence(top["placements"], top, "placements", "placements")
    for i, value in enumerate(plist):
        placement = v.string(value, plist, i, f"placements[{i}]", list(PLACEMENTS))
        if placement in placements:
            raise v.fail(plist, i, f"placements[{i}]: '{placement}' is listed twice")
        placements.append(placement)
    return placements


def _checked_values(v: _Validator, given: PosDict, key: str, where: str,
                    check: Callable[[Any], str | None]) -> Any:
    """A parameter's value or list of values, each checked; a list stays a list."""
    value = given[key]
    if isinstance(value, list) and not value:
        raise v.fail(given, key, f"{where}: empty list")
    for one in value if isinstance(value, list) else [value]:
        problem = check(one)
        if problem:
            raise v.fail(given, key, f"{where} {problem}")
    return list(value) if isinstance(value, list) else value


def _parse_sweep(v: _Validator, item: PosDict, where: str, suite: Suite,
                 test_placements: list[str], pods: int) -> dict[str, Any]:
    """A test's ``sweep``: the conditions it is measured under, resolved."""
    if suite.kind in NODE_KINDS:
        raise v.fail(item, "sweep", f"{where}.sweep: {suite.name} takes no sweep "
                     "(it measures the nodes, not traffic)")
    given = v.mapping(item["sweep"], item, "sweep", f"{where}.sweep",
                      set(sweeps.SWEEP_PARAMS), set())
    sweep: dict[str, Any] = {}
    for sname in given:
        main = sweeps.MODIFIERS.get(sname)
        if main is not None and main not in given:
            raise v.fail(given, sname, f"{where}.sweep.{sname} needs {main} in the same "
                         "sweep")
        sweep[sname] = _checked_values(v, given, sname, f"{where}.sweep.{sname}",
                                       sweeps.SWEEP_PARAMS[sname].check)
    if "background_flows" in sweep and "intra-host" in test_placements \
            and pods < BACKGROUND_MIN_PODS_INTRA:
        raise v.fail(given, "background_flows",
                     f"{where}.sweep.background_flows at intra-host needs "
                     f"lab.pods_per_host >= {BACKGROUND_MIN_PODS_INTRA} (the background "
                     f"pair is a second pod pair on the same host), got {pods}")
    return sweeps.resolve(sweep)


def _parse_tests(v: _Validator, top: PosDict, placements: list[str],
                 pods: int) -> list[TestSpec]:
    """``tests``: each a suite, its parameters, its own placements and its sweep."""
    tests: list[TestSpec] = []
    tlist = v.sequence(top["tests"], top, "tests", "tests")
    for i, entry in enumerate(tlist):
        where = f"tests[{i}]"
        item = v.mapping(entry, tlist, i, where, TEST_KEYS, {"suite"})
        suite_name = v.string(item["suite"], item, "suite", f"{where}.suite", sorted(SUITES))
        suite = SUITES[suite_name]
        params: dict[str, Any] = {}
        if "params" in item:
            given = v.mapping(item["params"], item, "params", f"{where}.params",
                              set(suite.params), set())
            for pname in given:
                params[pname] = _checked_values(v, given, pname, f"{where}.params.{pname}",
                                                 suite.params[pname].check)
        test_placements: list[str] = []
        if "placements" in item:
            tp = v.sequence(item["placements"], item, "placements", f"{where}.placements")
            for j, value in enumerate(tp):
                test_placements.append(v.string(value, tp, j, f"{where}.placements[{j}]",
                                                 placements))
        sweep = (_parse_sweep(v, item, where, suite, test_placements or placements, pods)
                 if "sweep" in item else {})
        tests.append(TestSpec(suite_name, params, sweep, tuple(test_placements)))
    return tests


def _parse_run_options(v: _Validator, top: PosDict) -> dict[str, Any]:
    """``warmup``, ``cpu_pinning`` and ``interleave``: how the measurements are taken."""
    options: dict[str, Any] = {}
    if "warmup" in top:
        options["warmup"] = v.integer(top["warmup"], top, "warmup", "warmup", 0, 10)
    if "cpu_pinning" in top:
        raw = top["cpu_pinning"]
        # YAML 1.1 reads a bare `off` as false.
        options["cpu_pinning"] = v.string("off" if raw is False else raw, top, "cpu_pinning",
                                          "cpu_pinning", PINNING)
    if "interleave" in top:
        options["interleave"] = v.string(top["interleave"], top, "interleave", "interleave",
                                         INTERLEAVE)
    return options


def parse_spec(data: Any, path: str, text: str, variant: str = "") -> Spec:
    """Validate parsed YAML and build a Spec; raises SpecError at the first problem. The
    sections are read in the order a reader meets them, each by its own function."""
    v = _Validator(path)
    if not isinstance(data, PosDict):
        raise SpecError(path, line_of(data) or 1, "a spec must be a YAML mapping")
    top = v.mapping(data, data, None, "spec", TOP_KEYS,
                    {"name", "matrix", "placements", "tests", "repetitions"})
    name = v.string(top["name"], top, "name", "name")
    if not NAME_RE.match(name):
        raise v.fail(top, "name", "'name' must be lowercase letters, digits, '-' or '_' "
                     f"(max 63), got '{name}'")
    description = v.string(top.get("description", ""), top, "description", "description")
    hosts, pods = _parse_lab(v, top)
    matrix = _parse_matrix(v, top)
    placements = _parse_placements(v, top)
    tests = _parse_tests(v, top, placements, pods)
    repetitions, max_repetitions, ci_target = _repetitions(v, top, top["repetitions"],
                                                           "repetitions", "claims" in top)
    claims: tuple[Claim, ...] = ()
    if "claims" in top:
        claims = parse_claims(top["claims"], top, path, {ref.key for ref in matrix})
    decisions = (_decisions(v, top, {str(c.get("metric")) for c in claims if c.get("metric")})
                 if "decisions" in top else Design())
    paper_values: tuple[PaperValue, ...] = ()
    if "paper_values" in top:
        paper_values = parse_paper_values(top["paper_values"], top, path,
                                          {ref.key for ref in matrix}, {c.id for c in claims})
    spec = Spec(max_repetitions=max_repetitions, ci_target=ci_target, claims=claims,
                decisions=decisions, paper_values=paper_values,
                path=path, text=text, name=name, description=description, hosts=hosts,
                pods_per_host=pods, matrix=tuple(matrix), placements=tuple(placements),
                tests=tuple(tests), repetitions=repetitions,
                sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                variants=tuple(name for name in VARIANTS if name in top),
                **_parse_run_options(v, top))
    _check_sequential(v, top, spec, "repetitions")
    chosen = spec
    for name in VARIANTS:     # every variant is validated, whichever is asked for
        if name in top:
            changed = _variant(v, top, spec, name)
            _check_sequential(v, top[name], changed, "repetitions")
            if name == variant:
                chosen = changed
    if variant and variant not in top:
        raise v.fail(top, None, f"this spec has no '{variant}' variant")
    return chosen


def _check_sequential(v: _Validator, where: PosDict, spec: Spec, key: str) -> None:
    """Claims can decide repetitions only where every round visits every mode: with
    within-mode rounds, a mode's later rounds run before the other modes are measured."""
    if spec.sequential and spec.interleave != "across-modes":
        raise v.fail(where, key, f"'{key}' with min < max and claims needs "
                     "'interleave: across-modes' (the claims compare modes round by round; "
                     "docs/statistics.md)")


def _decisions(v: _Validator, top: PosDict, metrics: set[str]) -> Design:
    block = v.mapping(top["decisions"], top, "decisions", "decisions", DECISION_KEYS, set())

    def fraction(where: PosDict, key: str, name: str, high: float) -> float:
        value = where[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not 0 < value < high:
            raise v.fail(where, key, f"'{name}' must be a number between 0 and {high}, "
                         f"got {value!r}")
        return float(value)

    design = Design()
    if "alpha" in block:
        design = dataclasses.replace(design, alpha=fraction(block, "alpha", "decisions.alpha",
                                                            0.5))
    if "spending" in block:
        design = dataclasses.replace(design, spending=v.string(
            block["spending"], block, "spending", "decisions.spending", sorted(SPENDING)))
    if "margin" in block:
        design = dataclasses.replace(design, margin=fraction(block, "margin",
                                                             "decisions.margin", 1.0))
    if "margins" in block:
        # a margin for a metric that no claim compares would silently do nothing
        given = v.mapping(block["margins"], block, "margins",
                          "decisions.margins (metrics the claims compare)", metrics, set())
        design = dataclasses.replace(design, margins={
            str(k): fraction(given, k, f"decisions.margins.{k}", 1.0) for k in given})
    return design


def _variant(v: _Validator, top: PosDict, spec: Spec, variant: str) -> Spec:
    """One of the spec's variants (``quick``: a smoke run; ``standard``: the study sized
    for a stated time): other repetitions, shorter tests, fewer sweep points, optionally
    fewer modes or placements; everything else (suites, claims) unchanged."""
    q = v.mapping(top[variant], top, variant, variant, VARIANT_KEYS, set())
    changes: dict[str, Any] = {"name": f"{spec.name}-{variant}", "variant": variant}
    if "repetitions" in q:
        reps, high, target = _repetitions(v, q, q["repetitions"], f"{variant}.repetitions",
                                          bool(spec.claims))
        changes.update(repetitions=reps, max_repetitions=high, ci_target=target)
    if "warmup" in q:
        changes["warmup"] = v.integer(q["warmup"], q, "warmup", f"{variant}.warmup", 0, 10)
    duration = None
    if "duration_s" in q:
        duration = v.integer(q["duration_s"], q, "duration_s", f"{variant}.duration_s", 1,
                             3600)
    sweep_values: dict[str, list[Any]] = {}
    if "sweeps" in q:
        given = v.mapping(q["sweeps"], q, "sweeps", f"{variant}.sweeps",
                          set(sweeps.SWEEP_PARAMS), set())
        for key, values in given.items():
            values = values if isinstance(values, list) else [values]
            for one in values:
                problem = sweeps.SWEEP_PARAMS[key].check(one)
                if problem:
                    raise v.fail(given, key, f"{variant}.sweeps.{key} {problem}")
            sweep_values[key] = list(values)
    param_values: dict[str, Any] = {}
    if "params" in q:
        given_params = v.mapping(q["params"], q, "params", f"{variant}.params",
                                 {n for s in SUITES.values() for n in s.params}, set())
        for key, value in given_params.items():
            for test in spec.tests:
                pspec = SUITES[test.suite].params.get(key)
                for one in (value if isinstance(value, list) else [value]):
                    problem = pspec.check(one) if pspec else None
                    if problem:
                        raise v.fail(given_params, key, f"{variant}.params.{key} {problem}")
            param_values[key] = value
    if "matrix" in q:
        keep = v.sequence(q["matrix"], q, "matrix", f"{variant}.matrix")
        known = {ref.key: ref for ref in spec.matrix}
        for i, key in enumerate(keep):
            if not isinstance(key, str) or key not in known:
                raise v.fail(keep, i, f"{variant}.matrix[{i}]: {str(key)[:80]!r} is not in the "
                             f"matrix ({', '.join(known)})")
        changes["matrix"] = tuple(known[k] for k in keep)
        # claims about modes a variant leaves out become "not testable" by themselves
    placements = spec.placements
    if "placements" in q:
        chosen = v.sequence(q["placements"], q, "placements", f"{variant}.placements")
        for i, name in enumerate(chosen):
            if name not in spec.placements:
                raise v.fail(chosen, i, f"{variant}.placements[{i}]: {str(name)[:80]!r} is "
                             f"not a placement of the spec ({', '.join(spec.placements)})")
        placements = tuple(p for p in spec.placements if p in chosen)
        changes["placements"] = placements
    tests = []
    for test in spec.tests:
        params = dict(test.params)
        if duration is not None and "duration_s" in SUITES[test.suite].params:
            params["duration_s"] = duration
        for key, value in param_values.items():
            if key in SUITES[test.suite].params:
                params[key] = value
        sweep = {k: sweep_values.get(k, val)
                 for k, val in test.sweep.items()}
        own = tuple(p for p in test.placements if p in placements) if test.placements else ()
        if test.placements and not own:
            continue      # every placement of this test is left out
        tests.append(TestSpec(test.suite, params, sweep, own))
    changes["tests"] = tuple(tests)
    return dataclasses.replace(spec, **changes)


def _repetitions(v: _Validator, where: PosDict, raw: Any, name: str,
                 claims: bool) -> tuple[int, int, float | None]:
    """``repetitions: N`` (fixed), ``{min, max, ci_target}`` (adaptive to a CI width) or,
    in a spec with claims, ``{min, max}`` (adaptive to the claims' decisions)."""
    if not isinstance(raw, PosDict):
        return v.integer(raw, where, "repetitions", name, 1, MAX_REPETITIONS), 0, None
    rep = v.mapping(raw, where, "repetitions", name, ADAPTIVE_KEYS,
                    SEQUENTIAL_KEYS if claims else ADAPTIVE_KEYS)
    low = v.integer(rep["min"], rep, "min", f"{name}.min", 2, MAX_REPETITIONS)
    high = v.integer(rep["max"], rep, "max", f"{name}.max", low, MAX_REPETITIONS)
    if "ci_target" not in rep:
        return low, high, None
    if claims:
        raise v.fail(rep, "ci_target", f"'{name}.ci_target' does not combine with claims: "
                     "the claims decide which cells get more repetitions (docs/statistics.md)")
    target = rep["ci_target"]
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < 1:
        raise v.fail(rep, "ci_target", f"'{name}.ci_target' must be a fraction of the "
                     f"mean between 0 and 1 (e.g. 0.05 for +-5 %), got {target!r}")
    return low, high, float(target)


def recorded_variant(spec_record: dict[str, Any]) -> str:
    """The variant a run's manifest records (runs before ``variant`` recorded ``quick``)."""
    return str(spec_record.get("variant") or ("quick" if spec_record.get("quick") else ""))


def load_spec(path: Path, variant: str = "") -> Spec:
    """Read, parse and validate a spec file (one of its variants if asked)."""
    data, text = load_file(path)
    return parse_spec(data, str(path), text, variant)


def load_spec_text(text: str, name: str = "<spec>", variant: str = "") -> Spec:
    return parse_spec(load_text(text, name), name, text, variant)


def every_variant(spec: Spec) -> list[tuple[str, Spec]]:
    """The full spec and each variant its file offers ("", quick, standard), parsed from
    the spec's own text: what `validate` plans and a bundle's README times."""
    full = spec if not spec.variant else load_spec_text(spec.text, spec.path)
    return [("", full), *((name, load_spec_text(spec.text, spec.path, name))
                          for name in full.variants)]


# what `run` and `reproduce` may override on the command line, and its bounds
OVERRIDES = {"repetitions": (1, MAX_REPETITIONS, "--repetitions"),
             "duration_s": (1, 3600, "--duration")}


def with_overrides(spec: Spec, overrides: dict[str, int]) -> Spec:
    """The spec with the command line's ``--repetitions`` (every cell's minimum; claims
    still get more rounds up to the spec's cap, or up to N if higher) and ``--duration``
    (every timed test's ``duration_s``), as iperf3 ``-t`` and netperf ``-l`` would."""
    given = {k: v for k, v in overrides.items() if v is not None}
    for key, value in given.items():
        low, high, flag = OVERRIDES[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InputError(f"{flag} {value}: must be an integer from {low} to {high}")
    changes: dict[str, Any] = {"overrides": tuple(sorted(given.items()))}
    if "repetitions" in given:
        n = given["repetitions"]
        changes["repetitions"] = n
        if spec.adaptive and n >= 2:
            changes["max_repetitions"] = max(spec.max_repetitions, n)
        else:      # one repetition cannot be adaptive: no interval to judge after it
            changes.update(max_repetitions=0, ci_target=None)
    if "duration_s" in given:
        changes["tests"] = tuple(
            dataclasses.replace(t, params={**t.params, "duration_s": given["duration_s"]})
            if "duration_s" in SUITES[t.suite].params else t for t in spec.tests)
    return dataclasses.replace(spec, **changes)


def spec_of_record(spec_record: dict[str, Any]) -> Spec:
    """The spec a run ran: its recorded text, variant and command-line overrides."""
    spec = load_spec_text(spec_record["text"], spec_record["path"],
                          recorded_variant(spec_record))
    overrides = spec_record.get("overrides") or {}
    return with_overrides(spec, dict(overrides)) if overrides else spec
