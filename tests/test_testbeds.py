"""Testbed inventories: the CloudLab profile (run with CloudLab's geni-lib), inventories
from CloudLab manifests and from Chameleon server lists in the shapes those services
return, and the `cnilab inventory cloudlab|chameleon` commands."""

from __future__ import annotations

import json
import re
import runpy
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnilab.errors import InputError
from cnilab.inventory import load_inventory
from cnilab.testbeds.chameleon import chameleon_inventory
from cnilab.testbeds.cloudlab import cloudlab_inventory

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "testbeds"
PROFILE = ROOT / "inventories" / "cloudlab" / "profile.py"
GENI = "{http://www.geni.net/resources/rspec/3}"


class _Portal(types.ModuleType):
    """A stand-in for geni.portal, which is Python-2 code in the geni-lib on PyPI (CloudLab
    runs its own copy). It binds parameters like the portal does and hands the request to
    the real geni.rspec.pg; the test captures what the profile prints."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        super().__init__("geni.portal")
        import geni.rspec.pg as pg

        self.overrides = overrides
        self.printed: list[str] = []
        self.parameters: dict[str, tuple[Any, Any]] = {}
        self.ParameterType = types.SimpleNamespace(INTEGER="integer", NODETYPE="nodetype",
                                                   IMAGE="image", STRING="string")
        portal = self

        class ParameterError(Exception):
            def __init__(self, message: str, names: list[str]) -> None:
                super().__init__(f"{names}: {message}")

        class Context:
            def __init__(self) -> None:
                self.errors: list[Exception] = []

            def defineParameter(self, name: str, description: str, kind: str,
                                default: Any, legal: Any = None) -> None:
                portal.parameters[name] = (default, legal)

            def bindParameters(self) -> Any:
                values = {k: portal.overrides.get(k, v[0]) for k, v in portal.parameters.items()}
                return types.SimpleNamespace(**values)

            def reportError(self, error: Exception) -> None:
                self.errors.append(error)

            def verifyParameters(self) -> None:
                if self.errors:
                    raise self.errors[0]

            def makeRequestRSpec(self) -> Any:
                return pg.Request()

            def printRequestRSpec(self, request: Any) -> None:
                portal.printed.append(request.toXMLString(pretty_print=True,
                                                          ucode=True))

        self.Context = Context
        self.ParameterError = ParameterError


def _run_profile(monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> tuple[_Portal, str]:
    pytest.importorskip("geni.rspec.pg", reason="geni-lib is a test dependency")
    portal = _Portal(overrides)
    import geni

    monkeypatch.setitem(sys.modules, "geni.portal", portal)
    monkeypatch.setattr(geni, "portal", portal, raising=False)
    runpy.run_path(str(PROFILE), run_name="__main__")
    return portal, portal.printed[0] if portal.printed else ""


def test_cloudlab_profile_requests_n_raw_nodes_on_one_lan(monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    portal, xml = _run_profile(monkeypatch, node_count=4, hardware_type="c220g5")
    root = ET.fromstring(xml)
    assert root.tag == f"{GENI}rspec" and root.get("type") == "request"
    nodes = root.findall(f"{GENI}node")
    assert [n.get("client_id") for n in nodes] == ["node0", "node1", "node2", "node3"]
    for index, node in enumerate(nodes):
        # geni-lib's RawPC requests sliver type "raw"; the manifest reports "raw-pc"
        assert node.find(f"{GENI}sliver_type").get("name") == "raw"
        image = node.find(f"{GENI}sliver_type/{GENI}disk_image").get("name")
        assert image.endswith("UBUNTU24-64-STD")
        assert node.find(f"{GENI}hardware_type").get("name") == "c220g5"
        ip = node.find(f"{GENI}interface/{GENI}ip")
        assert (ip.get("address"), ip.get("netmask")) == (f"10.10.1.{index + 1}",
                                                          "255.255.255.0")
    (lan,) = root.findall(f"{GENI}link")
    refs = [r.get("client_id") for r in lan.findall(f"{GENI}interface_ref")]
    assert refs == [n.find(f"{GENI}interface").get("client_id") for n in nodes]
    # the image choices are the pin profiles' images, so the two cannot drift apart
    pins = yaml.safe_load((ROOT / "versions" / "kubernetes.yml").read_text())["profiles"]
    choices = [urn for urn, _ in portal.parameters["image"][1]]
    assert sorted(choices) == sorted(p["cloudlab_image"] for p in pins.values())
    assert portal.parameters["image"][0] == pins["current"]["cloudlab_image"]


def test_cloudlab_profile_refuses_a_single_node(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Exception, match="a control plane and at least one worker"):
        _run_profile(monkeypatch, node_count=1)


def test_inventory_from_a_cloudlab_manifest(tmp_path: Path) -> None:
    text = (DATA / "cloudlab-manifest.xml").read_text()
    with pytest.raises(InputError, match="node node0 has logins for alice, bob; pass --user"):
        cloudlab_inventory(text, "manifest.xml")
    inventory = cloudlab_inventory(text, "manifest.xml", user="bob",
                                   key_file="~/.ssh/cl").inventory
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    nodes = {n.name: n for n in load_inventory(path)}
    assert [n.group for n in nodes.values()] == ["control_plane", "workers", "workers"]
    assert nodes["node1"].node_ip == "10.10.1.2"          # the experiment LAN
    assert nodes["node1"].address == "c220g5-110402.wisc.cloudlab.us"    # control network
    assert nodes["node1"].vars["ansible_user"] == "bob"
    assert nodes["node1"].vars["ansible_ssh_private_key_file"] == "~/.ssh/cl"
    other = cloudlab_inventory(text, "manifest.xml", user="alice",
                               control_plane="node2").inventory
    assert list(other["all"]["children"]["control_plane"]["hosts"]) == ["node2"]


def test_cloudlab_manifest_problems_are_named() -> None:
    text = (DATA / "cloudlab-manifest.xml").read_text()
    with pytest.raises(InputError, match=r"manifest\.xml: not an XML manifest"):
        cloudlab_inventory("<rspec", "manifest.xml")
    # the portal's manifests say type="request" too: judged by content
    relabelled = text.replace('type="manifest"', 'type="request"')
    assert cloudlab_inventory(relabelled, "m.xml", user="alice").left_out == []
    request = re.sub(r' sliver_id="[^"]*"', "", re.sub(r"<services>.*?</services>", "",
                                                        relabelled, flags=re.S))
    with pytest.raises(InputError, match="no node has a sliver_id or a login: this is a "
                                         "request RSpec; give the manifest"):
        cloudlab_inventory(request, "m.xml")
    nameless = text.replace('port="22" username="alice"/>', 'port="22"/>').replace(
        '<login authentication="ssh-keys" hostname="c220g5-110401.wisc.cloudlab.us" port="22" '
        'username="bob"/>', "")
    with pytest.raises(InputError, match=r"m\.xml: node node0 has a <login> to "
                                         r"c220g5-110401\.wisc\.cloudlab\.us without a "
                                         "username; pass --user NAME"):
        cloudlab_inventory(nameless, "m.xml")
    with_user = cloudlab_inventory(nameless, "m.xml", user="carol").inventory
    assert with_user["all"]["children"]["control_plane"]["hosts"]["node0"]["ansible_user"] \
        == "carol"
    two = text.replace('<ip address="10.10.1.2" type="ipv4" netmask="255.255.255.0"/>',
                       '<ip address="10.10.1.2" type="ipv4" netmask="255.255.255.0"/>'
                       '<ip address="10.10.2.2" type="ipv4" netmask="255.255.255.0"/>')
    with pytest.raises(InputError, match=r"node node1 has 2 experiment addresses .*--lan CIDR"):
        cloudlab_inventory(two, "m.xml", user="alice")
    # with --lan, the address in that network is node_ip (every node must have one)
    moved = two.replace('"10.10.1.1"', '"10.10.2.1"').replace('"10.10.1.3"', '"10.10.2.3"')
    chosen = cloudlab_inventory(moved, "m.xml", user="alice", lan="10.10.2.0/24").inventory
    assert chosen["all"]["children"]["workers"]["hosts"]["node1"]["node_ip"] == "10.10.2.2"
    with pytest.raises(InputError, match="--control-plane node9: no such host"):
        cloudlab_inventory(text, "m.xml", user="alice", control_plane="node9")


@pytest.mark.parametrize("shape", ["cli", "old-cli", "sdk"])
def test_inventory_from_a_chameleon_server_list(shape: str, tmp_path: Path) -> None:
    data = json.loads((DATA / f"chameleon-servers-{shape}.json").read_text())
    inventory = chameleon_inventory(data, shape, network="cnilab-lan",
                                    prefix="cnilab-").inventory
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    nodes = {n.name: n for n in load_inventory(path)}
    assert sorted(nodes) == ["cnilab-cp", "cnilab-w1", "cnilab-w2"]
    assert nodes["cnilab-cp"].group == "control_plane"
    assert nodes["cnilab-w1"].node_ip == "192.168.100.12"      # the experiment network
    assert nodes["cnilab-w1"].address == "129.114.109.22"      # its floating IP
    assert nodes["cnilab-w1"].vars["ansible_user"] == "cc"


def test_chameleon_problems_are_named() -> None:
    data = json.loads((DATA / "chameleon-servers-cli.json").read_text())
    with pytest.raises(InputError, match="server cnilab-cp is on cnilab-lan, sharednet1; pass "
                                         "--network NAME"):
        chameleon_inventory(data, "s.json", prefix="cnilab-")
    with pytest.raises(InputError, match="server other-project-vm is not on network cnilab-lan"):
        chameleon_inventory(data, "s.json", network="cnilab-lan")
    with pytest.raises(InputError, match=r"\(servers named cnilab-w2\*\): 1 host\(s\)"):
        chameleon_inventory(data, "s.json", network="cnilab-lan", prefix="cnilab-w2")


def test_inventory_commands_write_a_checked_inventory(tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "cl.yml"
    proc = cli("inventory", "cloudlab", str(DATA / "cloudlab-manifest.xml"), "--user", "alice",
               "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "node0        control_plane  node_ip 10.10.1.1       via " \
        "alice@c220g5-110401.wisc.cloudlab.us" in proc.stdout
    assert out.read_text().startswith("# Written by `cnilab inventory cloudlab` from ")
    assert cli("inventory", "check", str(out)).returncode == 0
    out2 = tmp_path / "ch.yml"
    proc = cli("inventory", "chameleon", str(DATA / "chameleon-servers-sdk.json"),
               "--network", "cnilab-lan", "--output", str(out2))
    assert proc.returncode == 0, proc.stderr
    assert "cnilab-w2    workers        node_ip 192.168.100.13  via cc@129.114.109.23" in \
        proc.stdout
    # bad input: one line, exit 2, nothing written
    bad = tmp_path / "bad.yml"
    proc = cli("inventory", "cloudlab", str(DATA / "cloudlab-manifest.xml"), "--output", str(bad))
    assert proc.returncode == 2 and not bad.exists()
    assert proc.stderr.strip().endswith("has logins for alice, bob; pass --user NAME")
    proc = cli("inventory", "chameleon", str(DATA / "cloudlab-manifest.xml"), "--output", str(bad))
    assert proc.returncode == 2 and not bad.exists()
    assert "not JSON" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = cli("inventory", "cloudlab", str(DATA / "cloudlab-manifest.xml"), "--lan", "10.10",
               "--output", str(bad))
    assert proc.returncode == 2 and "--lan 10.10: not a CIDR" in proc.stderr


def test_a_storage_node_and_a_node_on_no_lan_are_left_out_and_named() -> None:
    """CloudLab's NFS-dataset layout: a blockstore node beside the machines (no
    experiment-LAN address, no OS to run on), and a node on no LAN."""
    text = (DATA / "cloudlab-manifest.xml").read_text()
    storage = ('<node client_id="nfs-bs" exclusive="false" sliver_id="urn:publicid:IDN+'
               'wisc.cloudlab.us+sliver+950"><sliver_type name="emulab-blockstore"/>'
               '</node>')
    lonely = ('<node client_id="spare" exclusive="true" sliver_id="urn:publicid:IDN+wisc.'
              'cloudlab.us+sliver+951"><sliver_type name="raw-pc"/><services><login '
              'authentication="ssh-keys" hostname="c220g5-110499.wisc.cloudlab.us" port="22" '
              'username="alice"/></services></node>')
    generated = cloudlab_inventory(text.replace("</rspec>", storage + lonely + "</rspec>"),
                                   "m.xml", user="alice")
    assert generated.left_out == [
        "nfs-bs: a storage node (emulab-blockstore), not a machine to run on",
        "spare: no IPv4 address on any experiment interface (not on a LAN)"]
    hosts = generated.inventory["all"]["children"]["workers"]["hosts"]
    assert sorted(hosts) == ["node1", "node2"]


def test_chameleon_skips_failed_servers_and_reads_the_nova_reply() -> None:
    data = json.loads((DATA / "chameleon-servers-sdk.json").read_text())
    records = [dict(r) for r in data]
    broken = {**records[0], "name": "cnilab-w9", "status": "ERROR", "addresses": {}}
    empty = {**records[0], "name": "cnilab-w8", "addresses": {}}
    nova = {"servers": [*records, broken, empty]}
    generated = chameleon_inventory(nova, "servers.json", network="cnilab-lan",
                                    prefix="cnilab-")
    assert generated.left_out == ["cnilab-w9: status ERROR, not ACTIVE",
                                  "cnilab-w8: no addresses"]
    hosts = generated.inventory["all"]["children"]["workers"]["hosts"]
    assert sorted(hosts) == ["cnilab-w1", "cnilab-w2"]
    with pytest.raises(InputError, match=r"no usable server named cnilab-w9\* \(cnilab-w9: "
                                         r"status ERROR, not ACTIVE\)"):
        chameleon_inventory(nova, "servers.json", prefix="cnilab-w9")


def test_a_generated_inventory_error_names_the_users_file(tmp_path: Path, cli: Any) -> None:
    """Two servers with one node_ip: named against the server list, never a temporary file."""
    data = json.loads((DATA / "chameleon-servers-sdk.json").read_text())
    clone = {**data[1], "name": "cnilab-w3"}
    source = tmp_path / "servers.json"
    source.write_text(json.dumps([*data, clone]))
    out = tmp_path / "hosts.yml"
    proc = cli("inventory", "chameleon", str(source), "--network", "cnilab-lan",
               "--prefix", "cnilab-", "--output", str(out))
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.startswith(f"cnilab: {source} (servers named cnilab-*): host "), \
        proc.stderr
    assert "is also" in proc.stderr and ".tmp" not in proc.stderr
    assert not list(tmp_path.glob(".*"))


REAL_MANIFESTS = ROOT.parent / "shared" / "fixtures" / "testbeds" / "cloudlab"
# Real CloudLab manifests from public repositories (../shared/fixtures/testbeds/SOURCES.md):
# file -> (user, --lan or None, {host: (ansible_host, port, node_ip)} for some hosts,
#          number of hosts, hosts left out)
REAL = {
    "sebastianingino__CS244-oncache__cloudlab_manifest.xml": (
        "ingino", None, {"node0": ("amd269.utah.cloudlab.us", 22, "10.10.1.1"),
                         "node1": ("amd280.utah.cloudlab.us", 22, "10.10.1.2")}, 2, []),
    "amandabaran__rqpid__manifest_22569d7.xml": (
        "balajia", None, {}, 8, []),
    "yilongli__CloudLab-scripts__manifest.xml": ("anirajk", None, {}, 4, []),
    "bucket-xv__cephcluster__manifest.xml": ("kyleshu", None, {}, 5, []),
    "AKafakA__dodoor__manifest.xml": ("asdwb", None, {}, 5, []),
    "eniac__Beaver__manifest.xml": ("vinlnx", "192.168.255.0/24",
                                    {"node1": ("hp159.utah.cloudlab.us", 22, "192.168.255.1")},
                                    6, ["external", "mysw"]),
}
# real manifests no single experiment LAN joins: refused, naming the node and its LANs
REAL_REFUSED = {
    # a star of point-to-point links around one node (an InstaGENI rack, logins on ports
    # 28010-28012 of one host)
    "blueCormorant__Cloud-Computing-Term-Project__rspec.xml": (
        "minhnguy", "node webserver has 3 experiment addresses (found: interface-0 "
                    "10.10.1.1, interface-2 10.10.2.1, interface-4 10.10.3.1); pass --lan"),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_cloudlab_manifests_give_correct_inventories(name: str, tmp_path: Path) -> None:
    """Held-out inputs nobody on the project wrote; most say type="request" at the root."""
    path = REAL_MANIFESTS / name
    if not path.exists():
        pytest.skip(f"real manifest {name} absent (../shared/fixtures/testbeds)")
    user, lan, some, count, left = REAL[name]
    generated = cloudlab_inventory(path.read_text(), name, user=user, lan=lan)
    assert sorted(line.split(":")[0] for line in generated.left_out) == left
    out = tmp_path / "hosts.yml"
    from cnilab.inventory import write_inventory

    nodes = {n.name: n for n in load_inventory(write_inventory(generated.inventory, out, "t"))}
    assert len(nodes) == count
    for host, (address, port, node_ip) in some.items():
        assert (nodes[host].address, nodes[host].port, nodes[host].node_ip) == \
            (address, port, node_ip)
    assert all(n.vars["ansible_user"] == user for n in nodes.values())


@pytest.mark.parametrize("name", sorted(REAL_REFUSED))
def test_real_manifests_without_one_lan_are_refused_by_name(name: str) -> None:
    path = REAL_MANIFESTS / name
    if not path.exists():
        pytest.skip(f"real manifest {name} absent (../shared/fixtures/testbeds)")
    user, words = REAL_REFUSED[name]
    with pytest.raises(InputError) as info:
        cloudlab_inventory(path.read_text(), name, user=user)
    assert str(info.value).startswith(f"{name}: ") and words in str(info.value)
