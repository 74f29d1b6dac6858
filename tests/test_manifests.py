"""Pinned CNI install files: the lock that verifies every fetch, the structural patches
(field by field), and offline schema validation of the result for the pinned Kubernetes
version (kubernetes-validate --strict). Upstream files come from ../shared/fixtures;
tests that need them skip with the reason where that folder is absent, and the
hand-written manifests of the same shape run everywhere."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnilab.cni.base import ClusterNetwork
from cnilab.cni.registry import plugin
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
    mini = parse_documents((MINI / "flannel-mini.yml").read_bytes(), "mini")
    documents = plugin("flannel").patch(mini, mode, NETWORK, "v0")
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
        plugin("flannel").patch(documents, "vxlan",
                                ClusterNetwork("10.244.0.0/16", ("10.0.0.1",), 1400), "v0.28.9")
    with pytest.raises(InputError, match="flannel mode 'ipip': one of vxlan, host-gw"):
        plugin("flannel").patch(documents, "ipip", NETWORK, "v0.28.9")
    broken = [d for d in documents if d["kind"] != "ConfigMap"]
    with pytest.raises(InputError, match="expected one ConfigMap 'kube-flannel-cfg', found 0"):
        plugin("flannel").patch(broken, "vxlan", NETWORK, "v0.28.9")


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
    assert header.splitlines()[0] == "# cnilab manifest: flannel v0.28.9, mode vxlan, policy off"
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
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "cnilab manifest: argument --cni: invalid choice: 'nope' (choose from 'flannel', "
        "'calico', 'weave', 'cilium', 'kube-router') (see `cnilab manifest --help`)")


def test_manifest_command_weave_policy_off_expects_no_policy_controller(cli: Any) -> None:
    proc = cli("manifest", "--cni", "weave", "--mode", "fastdp",
               "--from", str(MINI / "weave-fork-mini.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].endswith("mode fastdp, policy off")
    body = proc.stdout.partition("\n---\n")[2]
    found = _weave_containers([d for d in yaml.safe_load_all(body) if d])
    assert "weave-npc" not in found
    assert {"name": "EXPECT_NPC", "value": "0"} in found["weave"]["env"]


def _kube_router_agent(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (daemonset,) = [d for d in documents if d["kind"] == "DaemonSet"]
    (agent,) = [c for c in daemonset["spec"]["template"]["spec"]["containers"]
                if c["name"] == "kube-router"]
    return dict(agent)


@pytest.mark.parametrize(("mode", "policy", "overlay"), [
    ("bgp", True, ["--enable-overlay=false"]),
    ("bgp", False, ["--enable-overlay=false"]),
    ("overlay-full", False, ["--enable-overlay=true", "--overlay-type=full"]),
])
def test_kube_router_current_release_patched_and_valid(mode: str, policy: bool,
                                                       overlay: list[str]) -> None:
    from cnilab.cni.base import ModeOptions

    path = _upstream("kube-router/v2.11.1/kubeadm-kuberouter.yaml")
    rendered = render("kube-router", mode, "current", NETWORK, from_file=path,
                      options=ModeOptions(policy=policy))
    agent = _kube_router_agent(rendered.documents)
    args = agent["args"]
    assert f"--run-firewall={'true' if policy else 'false'}" in args
    assert "--run-router=true" in args and "--run-service-proxy=false" in args
    assert [a for a in args if "overlay" in a] == overlay
    assert "--bgp-graceful-restart=true" in args               # upstream setting kept
    assert not any(a.startswith("--auto-mtu") for a in args)   # MTU left to the agent
    (daemonset,) = [d for d in rendered.documents if d["kind"] == "DaemonSet"]
    spec = daemonset["spec"]["template"]["spec"]
    for container in spec["containers"] + spec["initContainers"]:
        assert container["image"] == "docker.io/cloudnativelabs/kube-router:v2.11.1"
        assert container["imagePullPolicy"] == "IfNotPresent"
    assert rendered.source_sha256 == lock.read_lock(lock.lock_path())[
        release("kube-router", "current")[1]]
    _validate(rendered.documents, _k8s_schema_version("current"))


def test_kube_router_as_the_service_proxy() -> None:
    """Service proxy on: IPVS proxy, kubeadm skips kube-proxy, and the API server's own
    address in a kubeconfig ConfigMap mounted where --kubeconfig names it."""
    from cnilab.cni import kube_router
    from cnilab.cni.base import ModeOptions

    options = ModeOptions(replace_kube_proxy=True)
    assert plugin("kube-router").skips_kube_proxy("bgp", options)
    path = _upstream("kube-router/v2.11.1/kubeadm-kuberouter.yaml")
    rendered = render("kube-router", "bgp", "current", NETWORK, from_file=path,
                      options=options)
    args = _kube_router_agent(rendered.documents)["args"]
    assert "--run-service-proxy=true" in args
    assert "--kubeconfig=/var/lib/kube-router/kubeconfig" in args
    (config,) = [d for d in rendered.documents if d["kind"] == "ConfigMap"
                 and d["metadata"]["name"] == kube_router.KUBECONFIG_MAP]
    kubeconfig = json.loads(config["data"]["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://192.168.56.10:6443"
    assert kubeconfig["users"][0]["user"]["tokenFile"].endswith("serviceaccount/token")
    (daemonset,) = [d for d in rendered.documents if d["kind"] == "DaemonSet"]
    spec = daemonset["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "kubeconfig"]
    assert volume == {"name": "kubeconfig", "configMap": {
        "name": kube_router.KUBECONFIG_MAP,
        "items": [{"key": "kubeconfig", "path": "kubeconfig"}]}}
    mounts = [m for c in spec["containers"] for m in c.get("volumeMounts", [])
              if m["name"] == "kubeconfig"]
    assert [m["mountPath"] for m in mounts] == ["/var/lib/kube-router"]
    (cni,) = [d for d in rendered.documents if d["kind"] == "ConfigMap"
              and d["metadata"]["name"] == "kube-router-cfg"]
    bridge = [p for p in json.loads(cni["data"]["cni-conf.json"])["plugins"]
              if p["type"] == "bridge"]
    assert bridge[0]["hairpinMode"] is True
    _validate(rendered.documents, _k8s_schema_version("current"))
    # plugins without a Service mode refuse the option rather than ignore it
    with pytest.raises(InputError, match="kube-proxy replacement is not a mode"):
        render("flannel", "vxlan", "current", NETWORK, options=options,
               from_file=_upstream("flannel/v0.28.9/kube-flannel.yml"))


def test_kube_router_mtu_goes_into_the_bridge_plugin() -> None:
    path = _upstream("kube-router/v1.0.1/kubeadm-kuberouter.yaml")
    with pytest.raises(InputError, match=r"v1\.0\.1 cannot derive the pod MTU"):
        render("kube-router", "bgp", "paper-2020", NETWORK, from_file=path)
    forced = ClusterNetwork(NETWORK.pod_cidr, NETWORK.node_ips, mtu=1480)
    rendered = render("kube-router", "overlay-subnet", "paper-2020", forced, from_file=path)
    (config,) = [d for d in rendered.documents if d["kind"] == "ConfigMap"]
    bridge = json.loads(config["data"]["cni-conf.json"])["plugins"][0]
    assert (bridge["type"], bridge["mtu"], bridge["bridge"]) == ("bridge", 1480, "kube-bridge")
    args = _kube_router_agent(rendered.documents)["args"]
    assert "--overlay-type=subnet" in args and not any("auto-mtu" in a for a in args)
    current = render("kube-router", "bgp", "current", forced,
                     from_file=_upstream("kube-router/v2.11.1/kubeadm-kuberouter.yaml"))
    assert "--auto-mtu=false" in _kube_router_agent(current.documents)["args"]
    # on a cluster, the node's MTU (read by roles/cni_manifest) does what --auto-mtu does
    for mode, expected in (("bgp", 9000), ("overlay-full", 8980)):
        on_nodes = ClusterNetwork(NETWORK.pod_cidr, NETWORK.node_ips, node_mtu=9000)
        rendered = render("kube-router", mode, "paper-2020", on_nodes, from_file=path)
        (config,) = [d for d in rendered.documents if d["kind"] == "ConfigMap"]
        assert json.loads(config["data"]["cni-conf.json"])["plugins"][0]["mtu"] == expected


def _calico_node(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (daemonset,) = [d for d in documents if d["kind"] == "DaemonSet"
                    and d["metadata"]["name"] == "calico-node"]
    (node,) = [c for c in daemonset["spec"]["template"]["spec"]["containers"]
               if c["name"] == "calico-node"]
    return dict(node)


@pytest.mark.parametrize(("mode", "backend", "ipip", "vxlan"), [
    ("bgp", "bird", "Never", "Never"), ("ipip", "bird", "Always", "Never"),
    ("vxlan", "vxlan", "Never", "Always")])
def test_calico_current_release_patched_and_valid(mode: str, backend: str, ipip: str,
                                                  vxlan: str) -> None:
    path = _upstream("calico/v3.32.1/calico.yaml")
    rendered = render("calico", mode, "current", NETWORK, from_file=path)
    (config,) = [d for d in rendered.documents if d["kind"] == "ConfigMap"
                 and d["metadata"]["name"] == "calico-config"]
    assert config["data"]["calico_backend"] == backend
    assert config["data"]["veth_mtu"] == "0"                   # Calico derives the MTU
    node = _calico_node(rendered.documents)
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in node["env"]}
    assert env["CALICO_IPV4POOL_CIDR"] == "10.244.0.0/16"
    assert (env["CALICO_IPV4POOL_IPIP"], env["CALICO_IPV4POOL_VXLAN"]) == (ipip, vxlan)
    assert env["IP_AUTODETECTION_METHOD"] == \
        "cidr=192.168.56.10/32,192.168.56.11/32,192.168.56.12/32"
    assert [e["name"] for e in node["env"]].count("CALICO_IPV4POOL_IPIP") == 1
    probes = node["livenessProbe"]["exec"]["command"] + \
        node["readinessProbe"]["exec"]["command"]
    assert ("-bird-live" in probes) == (backend == "bird")
    assert "-felix-live" in probes and "-felix-ready" in probes
    _validate(rendered.documents, _k8s_schema_version("current"))


@pytest.mark.parametrize(("mode", "backend", "mtu"), [("bgp", "bird", "1500"),
                                                      ("ipip", "bird", "1480"),
                                                      ("vxlan", "vxlan", "1450")])
def test_calico_paper_release_from_the_docs_archive(mode: str, backend: str, mtu: str) -> None:
    """v3.14's calico.yaml exists only as the docs site rendered it: pinned at the
    versioned archive (sha256 recorded on first fetch). Before 3.17, calico-node uses
    veth_mtu as given (no derivation), so cnilab gives it the node MTU less the mode's
    encapsulation, as later releases derive it. Tested on a user's copy of that
    rendering (v3.14.1 images), the layout the archive serves."""
    version, url = release("calico", "paper-2020")
    assert (version, url) == ("v3.14", "https://docs.projectcalico.org/archive/v3.14/"
                                       "manifests/calico.yaml")
    path = _upstream("calico/v3.14-rendered/calico.yaml")
    network = ClusterNetwork(NETWORK.pod_cidr, NETWORK.node_ips, node_mtu=1500)
    rendered = render("calico", mode, "paper-2020", network, from_file=path)
    config = next(d for d in rendered.documents if d["metadata"]["name"] == "calico-config")
    assert (config["data"]["calico_backend"], config["data"]["veth_mtu"]) == (backend, mtu)
    (daemonset,) = [d for d in rendered.documents if d["kind"] == "DaemonSet"]
    (node,) = [c for c in daemonset["spec"]["template"]["spec"]["containers"]
               if c["name"] == "calico-node"]
    env = {e["name"]: e.get("value") for e in node["env"]}
    assert env["CALICO_IPV4POOL_CIDR"] == "10.244.0.0/16"
    assert env["CALICO_IPV4POOL_IPIP"] == ("Always" if mode == "ipip" else "Never")
    assert env["CALICO_IPV4POOL_VXLAN"] == ("Always" if mode == "vxlan" else "Never")
    with pytest.raises(InputError, match=r"calico v3\.14 cannot derive the pod MTU"):
        render("calico", mode, "paper-2020", NETWORK, from_file=path)


def _weave_containers(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    (daemonset,) = [d for d in documents if d["kind"] == "DaemonSet"]
    spec = daemonset["spec"]["template"]["spec"]
    return {c["name"]: c for c in (spec.get("initContainers") or []) + spec["containers"]}


@pytest.mark.parametrize(("mode", "policy"), [("fastdp", True), ("sleeve", False)])
def test_weave_paper_release_patched_and_valid(mode: str, policy: bool) -> None:
    from cnilab.cni.base import ModeOptions

    path = _upstream("weave/v2.6.5/weave-daemonset-k8s-1.11.yaml")
    rendered = render("weave", mode, "paper-2020", NETWORK, from_file=path,
                      options=ModeOptions(policy=policy))
    assert rendered.documents[0]["kind"] == "ServiceAccount"       # the List is expanded
    found = _weave_containers(rendered.documents)
    env = {e["name"]: e.get("value") for e in found["weave"]["env"]}
    assert env["IPALLOC_RANGE"] == "10.244.0.0/16"
    assert ("WEAVE_NO_FASTDP" in env) == (mode == "sleeve")
    assert "WEAVE_MTU" not in env                                 # weave's own default
    assert found["weave"]["image"] == "weaveworks/weave-kube:2.6.5"
    assert ("weave-npc" in found) == policy
    # without weave-npc, weaver must not expect it (launch.sh defaults EXPECT_NPC to 1,
    # and weaver then drops every packet to a pod at the head of FORWARD)
    assert env.get("EXPECT_NPC") == (None if policy else "0")
    assert all("imagePullPolicy" not in c for c in found.values())
    assert rendered.source_sha256 == lock.read_lock(lock.lock_path())[
        release("weave", "paper-2020")[1]]
    # the oldest offline schemas (1.25) still know every object this release uses
    _validate(rendered.documents, "1.25.0")


def test_weave_last_upstream_release_on_current_kubernetes() -> None:
    data = _upstream("weave/v2.8.1/weave-daemonset-k8s-1.11.yaml").read_bytes()
    documents = plugin("weave").patch(parse_documents(data, "weave 2.8.1"), "fastdp",
                            ClusterNetwork(NETWORK.pod_cidr, NETWORK.node_ips, mtu=1400),
                            "2.8.1")
    found = _weave_containers(documents)
    assert found["weave-init"]["image"] == "weaveworks/weave-kube:2.8.1"
    env = {e["name"]: e.get("value") for e in found["weave"]["env"]}
    assert env["WEAVE_MTU"] == "1400" and env["INIT_CONTAINER"] == "true"
    _validate(documents, _k8s_schema_version("current"))


@pytest.mark.parametrize(("mode", "replace", "policy"), [
    ("vxlan", False, False), ("native", False, True), ("native", True, False)])
def test_cilium_current_values_valid_against_the_chart_schema(mode: str, replace: bool,
                                                              policy: bool) -> None:
    import jsonschema

    from cnilab.cni import cilium
    from cnilab.cni.base import ModeOptions

    values_file = _upstream("cilium/v1.20.0/values.yaml")
    schema = json.loads(_upstream("cilium/v1.20.0/values.schema.json").read_text())
    options = ModeOptions(policy=policy, replace_kube_proxy=replace)
    rendered = render("cilium", mode, "current", NETWORK, from_file=values_file,
                      options=options)
    (values,) = rendered.documents
    assert values["ipam"] == {"mode": "kubernetes"}     # follow kubeadm's podSubnet
    assert values["MTU"] == 0
    assert values["routingMode"] == ("tunnel" if mode == "vxlan" else "native")
    if mode == "vxlan":
        assert values["tunnelProtocol"] == "vxlan" and "ipv4NativeRoutingCIDR" not in values
    else:
        assert values["ipv4NativeRoutingCIDR"] == "10.244.0.0/16"
        assert values["autoDirectNodeRoutes"] is True
    assert values["kubeProxyReplacement"] == ("true" if replace else "false")
    assert ("k8sServiceHost" in values) == replace
    if replace:
        assert (values["k8sServiceHost"], values["k8sServicePort"]) == ("192.168.56.10", 6443)
    # the paper's "policy off" is Cilium's default enforcement with no policies loaded
    assert values["policyEnforcementMode"] == "default"
    assert rendered.text(NETWORK, "test").splitlines()[0].endswith(
        "policy on" if policy else "policy off")
    assert plugin("cilium").skips_kube_proxy(mode, options) == replace
    defaults = yaml.safe_load(values_file.read_text())
    jsonschema.validate(cilium.merged(defaults, values), schema)
    # every key cnilab sets is a key of the chart
    assert set(values) <= set(defaults)


def test_cilium_paper_values_use_the_1_8_layout() -> None:
    from cnilab.cni import cilium
    from cnilab.cni.base import ModeOptions

    values_file = _upstream("cilium/v1.8.0/values.yaml")
    defaults = yaml.safe_load(values_file.read_text())
    rendered = render("cilium", "native", "paper-2020", NETWORK, from_file=values_file,
                      options=ModeOptions(policy=True))
    (values,) = rendered.documents
    assert values == {"global": {"tunnel": "disabled", "kubeProxyReplacement": "disabled",
                                 "nativeRoutingCIDR": "10.244.0.0/16",
                                 "autoDirectNodeRoutes": True},
                      "config": {"ipam": "kubernetes"}}
    assert set(values["global"]) <= set(defaults["global"])
    assert cilium.merged(defaults, values)["global"]["tunnel"] == "disabled"
    with pytest.raises(InputError, match="chart has no MTU value"):
        cilium.overrides("vxlan", ClusterNetwork(NETWORK.pod_cidr, NETWORK.node_ips, 1450),
                         "1.8.0", ModeOptions(policy=True))
    # policy off (the paper's setting: default enforcement, no policies) renders the same
    assert render("cilium", "native", "paper-2020", NETWORK, from_file=values_file,
                  options=ModeOptions(policy=False)).documents == [values]
    with pytest.raises(InputError, match=r"the 1\.8 chart has no policyEnforcementMode"):
        cilium.overrides("vxlan", NETWORK, "1.8.0", ModeOptions(policy_engine=False))


def test_cilium_policy_engine_off_is_its_own_labelled_setting() -> None:
    """``--policy never`` switches Cilium's engine off (policyEnforcementMode never,
    cilium-config enable-policy never): a setting apart from "no policies", named as such
    in the manifest header, and refused for plugins whose engine cannot be switched off."""
    from cnilab.cni import cilium
    from cnilab.cni.base import policy_options

    never = policy_options("never")
    assert (never.policy, never.policy_engine, never.label) == (False, False,
                                                                "policy engine off")
    values = cilium.overrides("vxlan", NETWORK, "1.20.0", never)
    assert values["policyEnforcementMode"] == "never"
    assert plugin("cilium").config_problems("vxlan", "1.20.0", never, {
        "routing-mode": "tunnel", "tunnel-protocol": "vxlan",
        "kube-proxy-replacement": "false", "enable-policy": "default"}) == [
        "cilium-config enable-policy is 'default', the mode needs 'never'"]
    for cni, mode in (("flannel", "vxlan"), ("weave", "fastdp"), ("calico", "vxlan"),
                      ("kube-router", "bgp")):
        with pytest.raises(InputError, match="cannot be switched off"):
            render(cni, mode, "current", NETWORK, options=never,
                   from_file=MINI / "flannel-mini.yml")


def test_chart_archive_values_are_read_from_the_pinned_archive(tmp_path: Path) -> None:
    import io
    import tarfile

    from cnilab.manifests.render import chart_values

    values = b"MTU: 0\nroutingMode: \"\"\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("cilium/values.yaml")
        info.size = len(values)
        tar.addfile(info, io.BytesIO(values))
    assert chart_values(buffer.getvalue(), "cilium.tgz") == values
    with pytest.raises(InputError, match="not a Helm chart archive"):
        chart_values(b"not gzip", "x.tgz")


# ------------------------------------------------------------------ custom resources

_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "pools.example.cnilab.io"},
    "spec": {"group": "example.cnilab.io", "scope": "Cluster",
             "names": {"kind": "Pool", "plural": "pools", "singular": "pool"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                 "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                     "type": "object", "required": ["cidr"], "properties": {
                         "cidr": {"type": "string"},
                         "mode": {"type": "string", "enum": ["Never", "Always"]},
                         "port": {"x-kubernetes-int-or-string": True},
                         "extra": {"type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}}}}}}}]}}


def _pool(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.cnilab.io/v1", "kind": "Pool",
            "metadata": {"name": "p"}, "spec": spec}


def test_custom_resources_checked_strictly_against_their_crd() -> None:
    from cnilab.manifests.crds import custom_resource_problems

    good = _pool(cidr="10.244.0.0/16", mode="Always", port="http", extra={"any": 1})
    assert custom_resource_problems([_CRD, good]) == []
    assert custom_resource_problems([_CRD, _pool(cidr="x", port=8080)]) == []
    problems = custom_resource_problems([_CRD, _pool(mode="Sometimes", cidrr="x")])
    assert any("spec.mode: 'Sometimes' is not one of ['Never', 'Always']" in p
               for p in problems)
    assert any("'cidr' is a required property" in p for p in problems)
    assert any("'cidrr' was unexpected" in p for p in problems)
    assert custom_resource_problems([good]) == [
        "Pool/p: no CustomResourceDefinition for example.cnilab.io/v1 Pool in the manifest, "
        "so it cannot be checked"]
    # built-in kinds are kubernetes-validate's, not this check's
    assert custom_resource_problems([{"apiVersion": "apps/v1", "kind": "DaemonSet"},
                                     {"apiVersion": "rbac.authorization.k8s.io/v1",
                                      "kind": "ClusterRole"}]) == []


def test_calico_custom_resources_against_the_upstream_crds(tmp_path: Path) -> None:
    """An IPPool (the object Calico's ipip/vxlan modes are set in) added to the pinned
    calico.yaml is checked against that release's CRD; `cnilab manifest --from` of such
    a file refuses a wrong one."""
    from cnilab.manifests.crds import custom_resource_problems

    text = _upstream("calico/v3.32.1/calico.yaml").read_text()
    pool = {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool",
            "metadata": {"name": "cnilab"},
            "spec": {"cidr": "10.244.0.0/16", "ipipMode": "Always", "vxlanMode": "Never",
                     "natOutgoing": True, "blockSize": 26}}
    good = tmp_path / "good.yaml"
    good.write_text(text + "\n---\n" + yaml.safe_dump(pool))
    rendered = render("calico", "ipip", "current", NETWORK, from_file=good)
    assert any(d["kind"] == "IPPool" for d in rendered.documents)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "\n---\n" + yaml.safe_dump(
        {**pool, "spec": {**pool["spec"], "ipipMode": "Sometimes"}}))
    with pytest.raises(InputError, match=r"IPPool/cnilab: spec\.ipipMode: 'Sometimes' is not"):
        render("calico", "ipip", "current", NETWORK, from_file=bad)
    # the operator install's resources: their CRDs (operator-crds.yaml) are not in
    # tigera-operator.yaml, so they are reported as unchecked, never passed silently
    resources = parse_documents(
        _upstream("calico/v3.32.1/custom-resources.yaml").read_bytes(), "custom-resources.yaml")
    operator = parse_documents(_upstream("calico/v3.32.1/tigera-operator.yaml").read_bytes(),
                               "tigera-operator.yaml")
    problems = custom_resource_problems(resources, operator)
    assert len(problems) == len(resources) == 4
    assert all("no CustomResourceDefinition for operator.tigera.io/v1" in p for p in problems)


@pytest.mark.parametrize(("mode", "policy"), [("fastdp", True), ("sleeve", False)])
def test_weave_community_fork_is_the_current_release(mode: str, policy: bool) -> None:
    """The current profile deploys the maintained fork (Weaveworks' 2.8.1 breaks on
    iptables-nft >= 1.8.8): its file is pinned at the fork's tag, and the fork's images
    get the release tag as Weaveworks' did."""
    from cnilab.cni.base import ModeOptions

    version, url = release("weave", "current")
    assert (version, url) == ("2.9.0", "https://raw.githubusercontent.com/rajch/weave/v2.9.0/"
                                       "prog/weave-kube/weave-daemonset-k8s-1.11.yaml")
    assert re.fullmatch(r"[0-9a-f]{64}", lock.read_lock(lock.lock_path())[url])
    rendered = render("weave", mode, "current", NETWORK, options=ModeOptions(policy=policy),
                      from_file=MINI / "weave-fork-mini.yaml")
    found = _weave_containers(rendered.documents)
    assert sorted(found) == sorted(["weave-init", "weave"] + (["weave-npc"] if policy else []))
    for container in found.values():
        assert container["image"].startswith("rajchaudhuri/weave-")
        assert container["image"].endswith(":2.9.0") and "imagePullPolicy" not in container
    env = {e["name"]: e.get("value") for e in found["weave"]["env"]}
    assert env["IPALLOC_RANGE"] == "10.244.0.0/16"
    assert ("WEAVE_NO_FASTDP" in env) == (mode == "sleeve")
    # 2.8.1 on: init.sh (weave-init) reads EXPECT_NPC too, to load br_netfilter/xt_set
    for name in ("weave", "weave-init"):
        values = {e["name"]: e.get("value") for e in found[name].get("env") or []}
        assert values.get("EXPECT_NPC") == (None if policy else "0"), name
    _validate(rendered.documents, _k8s_schema_version("current"))
