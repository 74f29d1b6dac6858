"""Upstream CNI install files on real clusters: pinned fetch (lock), and the structural
patches each plugin's module applies to them (cnilab/cni/<plugin>.py)."""
