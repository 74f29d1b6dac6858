"""The cluster network every target uses: one pod CIDR and one service CIDR.

Why one home: kubeadm's podSubnet and serviceSubnet, every CNI's pool, the inventory's
reserved ranges (a node_ip inside them is refused) and the netns lab's pod addresses
must all agree, or results from the lab and from a cluster name different networks.
Neither the lab nor the cluster code owns these values; both read them here, and the
roles get them through the ``cnilab.cluster.cluster_network`` filter.
"""

from __future__ import annotations

POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"

# The lab topology a spec (and `cnilab lab up`) may ask for: two pods per host at least,
# for the intra-host placement. Here, not in the spec module, because the lab's modules
# check them too and must not import the spec's (and its statistics') dependencies.
HOSTS_RANGE = (2, 8)
PODS_PER_HOST_RANGE = (2, 60)
