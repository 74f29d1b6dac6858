"""One module per CNI plugin: the kernel datapath that plugin builds on a node.

Each module registers a ``Datapath`` subclass per mode it implements. The lab
core only ever talks to this interface, so plugin knowledge stays in its module.
"""

from __future__ import annotations

# Importing a plugin module registers its modes.
from cnilab.lab.datapaths import (  # noqa: F401  (registration side effect)
    calico,
    cilium,
    flannel,
    kube_router,
    weave,
)
from cnilab.lab.datapaths.base import Datapath, datapath_for, implemented_modes

__all__ = ["Datapath", "datapath_for", "implemented_modes"]
