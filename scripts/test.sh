#!/usr/bin/env bash
# Install everything the tests need (Debian packages, a venv with the test extras) and run
# the whole suite: ruff, mypy --strict, pytest. Run as root from the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

# Peers the tests compare with: libbpf-tools (the C tools, row for row), bpftool, pahole
# (dwarves), bpftrace (USDT probe lists), libbpf itself (libbpf-dev); g++ for C++ DWARF;
# systemtap-sdt-dev for USDT probes
APT_PACKAGES=(python3-venv clang-19 llvm-19 bpftool libbpf-dev dwarves make gcc g++ xz-utils
              iproute2 libbpf-tools bpftrace util-linux coreutils bash systemtap-sdt-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
fi

VENV=${COREBPF_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test]'

"$VENV/bin/ruff" check corebpf tests bench scripts
"$VENV/bin/mypy"
"$VENV/bin/pytest" "$@"
