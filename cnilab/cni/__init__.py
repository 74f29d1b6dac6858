"""Per-plugin knowledge for real clusters, behind one small interface (``base.py``).

Each plugin's module says how its pinned upstream install file is patched for a mode
of the study (the one pod CIDR, the mode, the MTU policy, the node interface derived
from the inventory's node_ip) and what the rest of cnilab must know about it (e.g.
whether kube-proxy's addon is skipped). Nothing outside ``cnilab/cni/<plugin>.py`` and
``roles/cni_<plugin>/`` knows a plugin's names, keys or flags.
"""
