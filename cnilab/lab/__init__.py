"""The embedded netns lab: Kubernetes-like hosts and pods emulated as network namespaces.

An emulation, and every report says so: the kernel objects (bridges, VXLAN
devices, routes, iptables rules, eBPF programs), the CNI reference plugins and
the routing daemons are real; the plugins' agents and Kubernetes are not run.
"""
