"""`cnilab reproduce` end to end on the netns lab with a reduced study of the same structure
as experiments/lanman2020.yaml, then the HTML report in headless Chromium, then
`cnilab bundle` and `cnilab verify` (also on a tampered bundle)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import browser
import pytest

from cnilab.lab import capabilities

pytestmark = [pytest.mark.root, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "tests" / "data" / "specs" / "study-mini.yaml"


@pytest.mark.alone   # asserts T2's verdict, decided from measured values
def test_reproduce_report_bundle_verify(cli, clean_lab: None,  # type: ignore[no-untyped-def]
                                        tmp_path: Path) -> None:
    proc = cli("reproduce", str(STUDY), "--quick", "--out", str(tmp_path / "runs"),
               timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    # the tally, one line per claim, and last the report's path
    assert lines[0].startswith("Verdicts: ") and "an emulation" in lines[0]
    report = Path(lines[-1].removeprefix("report: "))
    run_dir = report.parent
    assert run_dir.name.endswith("-study-mini-quick")
    verdict_lines = {line.split()[0]: line for line in lines[1:-1]}
    assert set(verdict_lines) == {"T1", "T2", "T3", "T4", "T5"}

    claims = {c["id"]: c for c in json.loads((run_dir / "claims.json").read_text())}
    assert claims["T5"]["verdict"] == "not testable"
    assert claims["T2"]["verdict"] == "holds", claims["T2"]   # 4000 rules cost TCP_RR
    assert claims["T2"]["evidence"] and "policy_rules" in claims["T2"]["evidence"][0]
    if not capabilities.probe()["ipip"].available:
        assert "skipping calico/ipip" in proc.stderr
        assert claims["T4"]["verdict"] == "not testable"
        assert "no measurements of calico/ipip" in claims["T4"]["reason"]
    for c in claims.values():
        assert c["verdict"] in ("holds", "does not hold", "inconclusive", "not testable")

    summary = (run_dir / "summary.csv").read_text()
    assert summary.startswith("cell_id,mode,placement,suite")
    rows = list(csv.DictReader(io.StringIO(summary)))
    assert len({r["cell_id"] for r in rows}) == 2 * 11   # two buildable modes x 11 cells
    # the latency the claims compare is there beside the transactions
    assert {"transactions_per_s", "latency_mean_us"} <= {r["metric"] for r in rows}
    for name in ("throughput", "latency", "cpu", "cpp", "policy-netperf-tcp-rr",
                 "background-iperf3-tcp", "startup"):
        for ext in ("png", "svg"):
            assert (run_dir / "figures" / f"{name}.{ext}").stat().st_size > 1000

    html = report.read_text()
    assert report.name == "report.html" and 'id="emulation-notice"' in html
    # seven figures, and the one that shows the most claims again under the claims
    assert html.count("data:image/png;base64,") == 7 + 1 and "<table id=\"claims\">" in html
    assert html.index('id="tally"') < html.index('<table id="claims">') < \
        html.index('id="headline-figure"') < html.index('id="emulation-notice"')
    assert "src=\"figures/" not in html   # self-contained
    # laid out by a real headless Chromium at a laptop's and a phone's width: nothing
    # wider than the screen, every figure inside it, the first claim on the first screen
    for width in (1280, 400):
        page = browser.layout(report, width, 800)
        assert page["viewport"]["width"] == width
        assert page["scroll_width"] <= width, (width, page["scroll_width"])
        assert len(page["images"]) == 7 + 1
        for img in page["images"]:
            assert img["left"] >= 0 and img["right"] <= width, (width, img)
        assert page["tally"]["bottom"] <= page["claims"]["top"]
        assert page["claims_first_row"]["bottom"] <= 800, (width, page["claims_first_row"])
        assert page["claims"]["right"] <= width, (width, page["claims"])
    shot = tmp_path / "report.png"
    browser.screenshot(report, shot)
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1100
    grey = pixels[..., :3].mean(axis=2)
    assert (grey < 0.5).mean() > 0.01   # text and figures: not a blank page
    assert grey.std() > 0.1

    proc = cli("bundle", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    path_line, size_line = proc.stdout.strip().splitlines()
    bundle = Path(path_line)
    assert size_line == (f"{bundle.stat().st_size} bytes "
                         f"({bundle.stat().st_size / (1 << 20):.1f} MiB), sha256 "
                         f"{hashlib.sha256(bundle.read_bytes()).hexdigest()}")
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        run_id = run_dir.name
        member = tar.extractfile(f"{run_id}/BUNDLE-README.md")
        assert member is not None
        readme = member.read().decode()
    assert f"{run_id}/SHA256SUMS" in names and f"{run_id}/BUNDLE-README.md" in names
    assert f"{run_id}/results.jsonl" in names and f"{run_id}/report.html" in names
    # Ansible's per-event files stay out (no task failed), each playbook's output stays in
    events = list(run_dir.glob("ansible/**/job_events/*.json"))
    assert events and not [n for n in names if "/job_events/" in n]
    assert any(n.endswith("/stdout") for n in names if "/ansible/" in n)
    assert f"{len(events)} Ansible per-event JSON files" in readme
    # the README speaks to a committee: the commit, the requirements, how long each variant
    # takes (from this run's timings), every claim with its figure
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert f"commit `{manifest['cnilab']['git_commit'] or 'unknown'}`" in readme
    assert "Debian 12" in readme and "root" in readme
    assert re.search(r"--quick` \| (about )?\d+ min", readme), readme
    for claim_id in ("T1", "T2", "T3", "T4", "T5"):
        assert f"| {claim_id} |" in readme
    full = tmp_path / "full.tar.gz"
    assert cli("bundle", str(run_dir), "--output", str(full), "--ansible-events").returncode == 0
    with tarfile.open(full) as tar:
        assert len([n for n in tar.getnames() if "/job_events/" in n]) == len(events)
    proc = cli("verify", str(bundle))
    assert proc.returncode == 0, proc.stderr
    assert "verified" in proc.stdout and "summary.csv recomputed identically" in proc.stdout

    # A bundle whose results were edited after the fact fails verification.
    work = tmp_path / "tamper"
    with tarfile.open(bundle) as tar:
        tar.extractall(work, filter="data")
    results = work / run_id / "results.jsonl"
    first = json.loads(results.read_text().splitlines()[0])
    metric = next(k for k in ("throughput_gbps", "transactions_per_s", "all_ready_ms")
                  if k in first["metrics"])
    first["metrics"][metric] *= 1.5
    rest = results.read_text().splitlines()[1:]
    results.write_text("\n".join([json.dumps(first), *rest]) + "\n")
    forged = tmp_path / "forged.tar.gz"
    with tarfile.open(forged, "w:gz") as tar:
        tar.add(work / run_id, arcname=run_id)
    proc = cli("verify", str(forged))
    assert proc.returncode == 1
    assert "results.jsonl: sha256 differs from SHA256SUMS" in proc.stderr
    assert f"{metric} is" in proc.stderr and "from raw/" in proc.stderr


def test_reproduce_refuses_what_it_cannot_do(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "runs"
    if not (Path(__file__).resolve().parent.parent / "inventories" / "vagrant" /
            "hosts.yml").exists():   # a developer's running Vagrant lab would be used
        proc = cli("reproduce", "lanman2020", "--lab", "vagrant", "--out", str(out))
        assert proc.returncode == 2
        assert "hosts.yml does not exist; run `vagrant up` and `cnilab inventory vagrant`" \
            in proc.stderr
    proc = cli("reproduce", "lanman2020", "--inventory", str(tmp_path / "nope.yml"),
               "--out", str(out))
    assert proc.returncode == 2 and "nope.yml: no such inventory file" in proc.stderr
    (tmp_path / "one.yml").write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n        cp1: {node_ip: 10.1.0.1}\n"
        "    workers:\n      hosts:\n        w1: {node_ip: 10.1.0.2}\n")
    proc = cli("reproduce", "lanman2020", "--inventory", str(tmp_path / "one.yml"),
               "--profile", "paper-1999", "--out", str(out))
    assert proc.returncode == 2 and "--profile paper-1999: not in versions/kubernetes.yml" \
        in proc.stderr
    assert not out.exists()    # refused before a run directory was made
    proc = cli("reproduce", "lanman1999")
    assert proc.returncode == 2 and "no study 'lanman1999' (known: lanman2020" in proc.stderr
    proc = cli("verify", str(tmp_path / "nope.tar.gz"))
    assert proc.returncode == 2 and "not a readable .tar.gz bundle" in proc.stderr
