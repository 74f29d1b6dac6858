#!/usr/bin/env bash
# Install the system packages cnilab needs (run as root).
#
#   scripts/install-system-deps.sh [lab|test]
#
# Debian 12 is what we test. Ubuntu gets the equivalent (netperf lives in
# "multiverse" there). Anywhere else we stop and list what to install.
# Package names (not versions) live here; the versions a result depends on are
# pinned in versions/tools.yml and checked against the installed binaries by
# `cnilab doctor` and recorded in every run manifest.
set -euo pipefail

profile="${1:-lab}"
here="$(cd "$(dirname "$0")" && pwd)"

# What the netns lab and the benchmark engine use.
lab_packages=(
  iproute2 iptables ipset conntrack iputils-ping procps psmisc util-linux
  iperf3 netperf containernetworking-plugins bird2 gobgpd
  clang llvm libbpf-dev bpftool
  ethtool    # a VXLAN mode with its tunnel offload off (cnilab/lab/offload.py)
  python3 python3-venv python3-pip make git
)
# What the static checks and tests use on top.
test_packages=(openssh-server tcpdump chromium vagrant nftables busybox-static skopeo containerd)  # containerd: `containerd config dump` of the configuration rendered for the 1.x line; chromium: screenshot of report.html; vagrant: `vagrant validate`; nftables: what emulated nodes are reset and collected with (ethtool too, installed with the lab); busybox-static, skopeo: the benchmark pod image is built from it and inspected as an OCI archive

packages=("${lab_packages[@]}")
if [ "$profile" = "test" ]; then packages+=("${test_packages[@]}"); fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: must run as root (the netns lab needs root anyway)" >&2
  exit 1
fi

. /etc/os-release
case "${ID:-unknown}" in
  debian)
    if [ "${VERSION_ID:-}" != "12" ]; then
      echo "install-system-deps: warning: tested on Debian 12, this is Debian ${VERSION_ID:-?}" >&2
    fi
    extra_component=non-free
    ;;
  ubuntu)
    extra_component=multiverse
    ;;
  *)
    echo "install-system-deps: unsupported distribution '${ID:-unknown}'." >&2
    echo "Install by hand: ${packages[*]}" >&2
    echo "(netperf 2.7.0 and iperf3 must be on PATH; CNI reference plugins in /usr/lib/cni or set CNILAB_CNI_PATH)" >&2
    exit 1
    ;;
esac

export DEBIAN_FRONTEND=noninteractive
# apt_components.py below needs a Python; minimal images may have none yet.
if ! command -v python3 >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-system-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

python3 "$here/apt_components.py" "$extra_component"
apt-get update -qq
# --no-install-recommends keeps the set small and predictable.
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Distribution units would start daemons in the root namespace on a systemd
# host; the lab runs its own instances inside namespaces, so keep them off.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now bird.service netperf.service containerd.service >/dev/null 2>&1 || true
fi
echo "install-system-deps: installed ${missing[*]}"
