"""cnilab on CloudLab: N bare-metal nodes on one experiment LAN (the paper's topology).

Create a CloudLab profile from this file (Experiments > Create Experiment Profile >
upload), instantiate it, then on your machine:

    cnilab inventory cloudlab manifest.xml      # the experiment's Manifest tab, saved
    cnilab doctor --inventory inventories/cloudlab/hosts.yml
    cnilab cluster up --inventory inventories/cloudlab/hosts.yml

node0 becomes the control plane and the rest workers. Every node gets one interface on
the LAN with 10.10.1.<i+1>/24: that address is its node_ip (benchmark traffic), while
Ansible uses the control network. Pick one hardware type for all nodes: the paper
compared plugins on identical machines, and mixed NICs make results incomparable.
The image choices are versions/kubernetes.yml's `cloudlab_image` per pin profile.
"""

import geni.portal as portal
import geni.rspec.pg as pg

IMAGES = [
    ("urn:publicid:IDN+emulab.net+image+emulab-ops//UBUNTU24-64-STD",
     "Ubuntu 24.04 (pin profile current)"),
    ("urn:publicid:IDN+emulab.net+image+emulab-ops//UBUNTU20-64-STD",
     "Ubuntu 20.04 (pin profile paper-2020; cgroup v1, Python 3.8)"),
]

context = portal.Context()
context.defineParameter("node_count", "Nodes (1 control plane + workers; the paper: 3)",
                        portal.ParameterType.INTEGER, 3)
context.defineParameter("hardware_type", "Hardware type for every node (empty: any)",
                        portal.ParameterType.NODETYPE, "")
context.defineParameter("image", "Disk image", portal.ParameterType.IMAGE, IMAGES[0][0],
                        IMAGES)
context.defineParameter("lan_mbps", "LAN bandwidth in Mbit/s (0: the NIC's full speed)",
                        portal.ParameterType.INTEGER, 0)
params = context.bindParameters()

if params.node_count < 2 or params.node_count > 250:
    context.reportError(portal.ParameterError(
        "between 2 and 250 nodes: a control plane and at least one worker", ["node_count"]))
if params.lan_mbps < 0:
    context.reportError(portal.ParameterError("bandwidth cannot be negative", ["lan_mbps"]))
context.verifyParameters()

request = context.makeRequestRSpec()
lan = request.LAN("lan")
if params.lan_mbps:
    lan.bandwidth = params.lan_mbps * 1000          # kbit/s
lan.best_effort = False
for index in range(params.node_count):
    node = request.RawPC("node%d" % index)
    node.disk_image = params.image
    if params.hardware_type:
        node.hardware_type = params.hardware_type
    interface = node.addInterface("if1")
    interface.addAddress(pg.IPv4Address("10.10.1.%d" % (index + 1), "255.255.255.0"))
    lan.addInterface(interface)

context.printRequestRSpec(request)
