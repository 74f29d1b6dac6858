"""Pinned CNI install files: the lock that verifies every fetch, the structural patches
(field by field), and offline schema validation of the result for the pinned Kubernetes
version (kubernetes-validate --strict). Upstream files come from ../shared/fixtures;
tests that need them skip with the reason where that folder is absent, and the
hand-written manifests of the same shape run everywhere."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnilab.cni import flannel
from cnilab.cni.base import ClusterNetwork
from cnilab.errors import CnilabError, InputError
from cnilab.manifests import lock
from cnilab.manifests.render import parse_documents, release, render

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT.parent / "shared" / "fixtures" / "upstream"
MINI = ROOT / "tests" / "data" / "manifests"
NETWORK = ClusterNetwork(pod_cidr="10.244.0.0/16",
                         node_ips=("192.168.56.10", "192.168.56.11", "192.168.56.12"))
PINS = yaml.safe_load((ROOT / "versions" / "kubernetes.yml").read_text())["profiles"]


def _upstream(relative: str) -> Path:
    path = UPSTREAM / relative
    if not path.exists():
        pytest.skip(f"upstream fixture {relative} absent (../shared/fixtures/upstream)")
    return path


def _k8s_schema_version(profile: str) -> str:
    major, minor = PINS[profile]["kubernetes"].split(".")[:2]
    return f"{major}.{minor}.0"


def _validate(documents: list[dict[str, Any]], version: str) -> None:
    import kubernetes_validate

    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def _net_conf(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (config,) = [d for d in documents if d["kind"] == "ConfigMap"
                 and d["metadata"]["name"] == "kube-flannel-cfg"]
    return dict(json.loads(config["data"]["net-conf.json"]))


def _flannel_args(documents: list[dict[str, Any]]) -> list[list[str]]:
    return [c["args"] for d in documents if d["kind"] == "DaemonSet"
            for c in d["spec"]["template"]["spec"]["containers"] if c["name"] == "kube-flannel"]


@pytest.mark.parametrize("mode", ["vxlan", "host-gw"])
def test_flannel_patch_on_a_manifest_of_the_same_shape(mode: str) -> None:
    documents = flannel.patch(parse_documents((MINI / "flannel-mini.yml").read_bytes(), "mini"),
                              mode, NETWORK, "v0")
    assert _net_conf(documents) == {"Network": "10.244.0.0/16", "Backend": {"Type": mode}}
    (args,) = _flannel_args(documents)
    assert args == ["--ip-masq", "--kube-subnet-mgr",
                    r"--iface-regex=^(192\.168\.56\.10|192\.168\.56\.11|192\.168\.56\.12)$"]


@pytest.mark.parametrize("mode", ["vxlan", "host-gw"])
def test_flannel_current_release_patched_and_valid_for_the_pinned_kubernetes(mode: str) -> None:
    path = _upstream("flannel/v0.28.9/kube-flannel.yml")
    rendered = render("flannel", mode, "current", NETWORK, from_file=path)
    assert rendered.version == "v0.28.9"
    assert rendered.source_sha256 == lock.read_lock(lock.lock_path())[
        release("flannel", "current")[1]]       # the fixture is the locked upstream file
    net_conf = _net_conf(rendered.documents)
    assert net_conf["Network"] == "10.244.0.0/16"
    assert net_conf["Backend"] == {"Type": mode}
    assert net_conf["EnableNFTables"] is False      # untouched upstream setting kept
    (args,) = _flannel_args(rendered.documents)
    assert args[-1] == r"--iface-regex=^(192\.168\.56\.10|192\.168\.56\.11|192\.168\.56\.12)$"
    assert "--ip-masq" in args and "--kube-subnet-mgr" in args
    _validate(rendered.documents, _k8s_schema_version("current"))


def test_flannel_paper_release_patches_every_architecture_daemonset() -> None:
    path = _upstream("flannel/v0.12.0/kube-flannel.yml")
    rendered = render("flannel", "host-gw", "paper-2020", NETWORK, from_file=path)
    assert rendered.version == "v0.12.0"
    all_args = _flannel_args(rendered.documents)
    assert len(all_args) == 5                       # amd64, arm64, arm, ppc64le, s390x
    assert all(a[-1].startswith("--iface-regex=^(192") for a in all_args)
    assert _net_conf(rendered.documents)["Backend"] == {"Type": "host-gw"}
    # this file needs Kubernetes <= 1.21 APIs (PodSecurityPolicy, RBAC v1beta1), and the
    # offline schemas start at 1.25: those objects are unknown there, as on a 1.25+
    # cluster; the objects the patch touches are strictly valid
    import kubernetes_validate

    kinds = {d["kind"]: d["apiVersion"] for d in rendered.documents}
    assert kinds["PodSecurityPolicy"] == "policy/v1beta1"
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        _validate([d for d in rendered.documents if d["kind"] == "PodSecurityPolicy"], "1.25.0")
    _validate([d for d in rendered.documents if d["kind"] in ("ConfigMap", "DaemonSet")],
              "1.25.0")


def test_flannel_refuses_a_forced_mtu_and_unknown_modes() -> None:
    documents = parse_documents((MINI / "flannel-mini.yml").read_bytes(), "mini")
    with pytest.raises(InputError, match="has no MTU setting"):
        flannel.patch(documents, "vxlan", ClusterNetwork("10.244.0.0/16", ("10.0.0.1",), 1400),
                      "v0.28.9")
    with pytest.raises(InputError, match="flannel mode 'ipip': one of vxlan, host-gw"):
        flannel.patch(documents, "ipip", NETWORK, "v0.28.9")
    broken = [d for d in documents if d["kind"] != "ConfigMap"]
    with pytest.raises(InputError, match="expected one ConfigMap 'kube-flannel-cfg', found 0"):
        flannel.patch(broken, "vxlan", NETWORK, "v0.28.9")


def test_locked_sha256_of_every_pinned_file_matches_the_upstream_record() -> None:
    locked = lock.read_lock(lock.lock_path())
    for profile, version_dir in (("current", "v0.28.9"), ("paper-2020", "v0.12.0")):
        version, url = release("flannel", profile)
        assert version == version_dir and url.startswith("https://") and "/master/" not in url
        data = _upstream(f"flannel/{version_dir}/kube-flannel.yml").read_bytes()
        assert hashlib.sha256(data).hexdigest() == locked[url]


def test_lock_records_once_then_verifies(tmp_path: Path) -> None:
    lock_file = tmp_path / "manifests.lock"
    served = {"https://example.invalid/a.yml": b"kind: List\nitems: []\n"}
    calls: list[str] = []

    def opener(url: str) -> bytes:
        # stands in for the HTTPS download (no internet here); returns what "upstream" serves
        calls.append(url)
        return served[url]

    url = "https://example.invalid/a.yml"
    data, digest, recorded = lock.fetch(url, cache_dir=tmp_path / "c", lock=lock_file,
                                        opener=opener)
    assert recorded and digest == hashlib.sha256(data).hexdigest()
    assert lock.read_lock(lock_file) == {url: digest}
    # verified from the cache; no second download
    assert lock.fetch(url, cache_dir=tmp_path / "c", lock=lock_file, opener=opener)[2] is False
    assert calls == [url]
    # upstream changes the bytes behind the same URL: the run stops, the lock stays
    served[url] = b"kind: List\nitems: [{kind: Pod}]\n"
    for cached in (tmp_path / "c").iterdir():
        cached.unlink()
    with pytest.raises(lock.LockMismatch, match="nothing was applied"):
        lock.fetch(url, cache_dir=tmp_path / "c", lock=lock_file, opener=opener)
    assert lock.read_lock(lock_file) == {url: digest}
    with pytest.raises(CnilabError, match="https only"):
        lock.fetch("http://example.invalid/b.yml", cache_dir=tmp_path / "c", lock=lock_file,
                   opener=opener)


def test_manifest_command(cli: Any, tmp_path: Path) -> None:
    path = MINI / "flannel-mini.yml"
    proc = cli("manifest", "--cni", "flannel", "--mode", "vxlan", "--from", str(path))
    assert proc.returncode == 0, proc.stderr
    header, _, body = proc.stdout.partition("\n---\n")
    assert header.splitlines()[0] == "# cnilab manifest: flannel v0.28.9, mode vxlan"
    assert f"# sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}" in header
    documents = list(yaml.safe_load_all(body))
    assert json.loads(documents[0]["data"]["net-conf.json"])["Backend"] == {"Type": "vxlan"}
    proc = cli("manifest", "--cni", "flannel", "--mode", "ipip", "--from", str(path))
    assert proc.returncode == 2 and proc.stderr.strip() == \
        "cnilab: --mode ipip: flannel modes are vxlan, host-gw"
    proc = cli("manifest", "--cni", "flannel", "--mode", "vxlan", "--mtu", "1400",
               "--from", str(path))
    assert proc.returncode == 2 and "has no MTU setting" in proc.stderr
    proc = cli("manifest", "--cni", "nope", "--mode", "x", "--from", str(path))
    assert proc.returncode == 2 and "real-cluster support exists for flannel" in proc.stderr
