"""What a report says first: the tally of verdicts, each claim's deciding comparison, what
to run next about the inconclusive ones (with an estimate from this run's own timings),
and the figure that shows the most claims.

Presentation only: it reads verdicts, records and the stored spec, and writes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from cnilab.claims import DECIDED, EQUAL, FAILS, HOLDS, INCONCLUSIVE, UNTESTABLE, Verdict
from cnilab.estimate import estimate, overhead_s
from cnilab.figures import figure_for_claim

ORDER = (HOLDS, FAILS, EQUAL, INCONCLUSIVE, UNTESTABLE)
WORDS = {HOLDS: ("holds", "hold"), FAILS: ("does not hold", "do not hold"),
         EQUAL: ("shows no meaningful difference", "show no meaningful difference"),
         INCONCLUSIVE: ("inconclusive", "inconclusive"),
         UNTESTABLE: ("not testable", "not testable")}


def tally(verdicts: list[str]) -> str:
    """``4 hold, 1 does not hold, 6 inconclusive, 2 not testable`` (verdicts present)."""
    counts = Counter(verdicts)
    return ", ".join(f"{counts[v]} {WORDS[v][0] if counts[v] == 1 else WORDS[v][1]}"
                     for v in ORDER if counts[v])


def deciding_pair(verdict: Verdict) -> dict[str, Any] | None:
    """The comparison that carries the verdict: the one the other way (does not hold),
    within the margin (no meaningful difference), the weakest of all (holds), or the
    furthest from any decision (inconclusive)."""
    pairs = verdict.pairs
    if not pairs:
        return None
    wanted = {FAILS: "worse", EQUAL: "equivalent"}.get(verdict.verdict)
    if wanted:
        return next((p for p in pairs if p["outcome"] == wanted), pairs[0])
    if verdict.verdict == HOLDS:
        return max(pairs, key=lambda p: p["p_better"])
    undecided = [p for p in pairs if p["outcome"] == "undecided"] or pairs
    return max(undecided, key=lambda p: min(p["p_better"], p["p_worse"], p["p_equivalent"]))


def effect_text(pair: dict[str, Any] | None) -> str:
    if pair is None:
        return "-"
    low, high = pair["ci"]
    return (f"{pair['a']} / {pair['b']} = x{pair['ratio']:.3g} "
            f"[{low:.3g}, {high:.3g}]")


@dataclass(frozen=True)
class NextStep:
    """What to run about the inconclusive claims, and about how long it takes here."""

    why: str
    command: str
    minutes_low: float | None = None
    minutes_high: float | None = None

    def span(self) -> str:
        """`` (about 12 min ...)`` or ``(10-25 min ...)``; empty without an estimate."""
        if self.minutes_low is None or self.minutes_high is None:
            return ""
        when = (f"about {self.minutes_low:.0f} min" if self.minutes_high - self.minutes_low < 1
                else f"{self.minutes_low:.0f}-{self.minutes_high:.0f} min")
        return f" ({when} on this machine, from this run's timings)"


def base_command(argv: list[str]) -> list[str]:
    """A run's command line without its variant flag and its overrides of repetitions
    and duration, for naming another variant (which sets both itself)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--quick", "--standard"):
            continue
        elif arg in ("--repetitions", "--duration"):
            skip = True
        elif not arg.startswith(("--repetitions=", "--duration=")):
            out.append(arg)
    return out or ["cnilab", "run"]


def next_step(verdicts: list[Verdict], manifest: dict[str, Any],
              records: list[dict[str, Any]], skipped: set[str] | None = None,
              state: dict[str, Any] | None = None) -> NextStep | None:
    """For a run with inconclusive claims: the next larger variant of its spec (quick ->
    standard -> the full study), or more rounds of the same one. ``skipped``: modes this
    target could not build (left out of the estimate)."""
    if not any(v.verdict == INCONCLUSIVE for v in verdicts):
        return None
    from cnilab.spec import load_spec_text, recorded_variant

    spec_info = manifest["spec"]
    variant = recorded_variant(spec_info)
    argv = [str(a) for a in manifest.get("command", [])]
    base = base_command(argv)
    ladder = {"quick": ("standard", "--standard"), "standard": ("", "")}
    if variant in ladder:
        bigger, flag = ladder[variant]
        try:
            spec = load_spec_text(spec_info["text"], spec_info["path"], bigger)
        except Exception:   # a spec without that variant: the full study
            spec, flag = load_spec_text(spec_info["text"], spec_info["path"], ""), ""
        command = " ".join(base + ([flag] if flag else []))
        why = f"run the {'standard variant' if flag else 'full study'}, which measures more"
    else:
        return NextStep(f"raise repetitions.max in {spec_info['path']} for more rounds of "
                        "the undecided claims, then resume",
                        f"cnilab run {spec_info['path']} --resume RUN_DIR")
    spent = estimate(spec, overhead_s(manifest, state or {}, records), skipped)
    return NextStep(why, command, spent.minutes_low, spent.minutes_high)


def headline_figure(verdicts: list[Verdict]) -> str | None:
    """The figure that shows the numbers of the most decided claims (then of any)."""
    def counts(selected: list[Verdict]) -> Counter[str]:
        return Counter(figure_for_claim(v.claim.get("suite"), v.claim.get("metric"),
                                        v.claim.get("sweep") or v.claim.get("at_max"))
                       for v in selected if v.claim.kind != "untestable")

    found = counts([v for v in verdicts if v.verdict in DECIDED]) or counts(verdicts)
    return found.most_common(1)[0][0] if found else None
