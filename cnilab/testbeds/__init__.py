"""Inventories from testbed descriptions (CloudLab manifests, Chameleon server lists).

Each generator turns what a testbed reports about an experiment into cnilab's one
inventory shape (control_plane/workers, node_ip per host), so a testbed cluster takes
the same path as Vagrant and bare metal afterwards.
"""
