""".kconfig externs load, as libbpf loads them: laid out by the loader, their BTF VARs made
loader-allocated (the kernel refuses extern VARs), filled from this kernel's config."""

from __future__ import annotations

import gzip
import os
import platform

import pytest

from corebpf.skeleton import Skeleton

from .conftest import PROGS


def _config() -> dict[str, str]:
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            text = f.read()
    except OSError:
        pytest.skip("this kernel exposes no /proc/config.gz to compare with")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line
                and not line.startswith("#"))


def test_kconfig_externs_have_this_kernels_values() -> None:
    config = _config()
    with Skeleton.open_file(PROGS / "kconfig.bpf.o") as s:
        s.load()
        s.attach()
        os.getppid()
        bss, data = s.sections[".bss"], s.sections[".data"]
        major, minor, patch = (int(x) for x in
                               platform.release().split("-")[0].split(".")[:3])
        assert bss.seen_version == (major << 16) + (minor << 8) + min(patch, 255)
        assert bss.seen_bpf_syscall == (1 if config.get("CONFIG_BPF_SYSCALL") == "y" else 0)
        assert bss.seen_hz == int(config.get("CONFIG_HZ", "0"))
        assert data.seen_missing == 0  # a weak extern the kernel lacks reads as zero


def test_skeleton_kconfig_view() -> None:
    """skel.kconfig: the externs as the loader filled them (libbpf's skel->kconfig)."""
    from corebpf.skeleton import SkeletonError

    with Skeleton.open_file(PROGS / "kconfig.bpf.o") as s:
        assert s.kconfig.LINUX_KERNEL_VERSION == 0  # unknown until load
        s.load()
        config = _config()
        assert s.kconfig.CONFIG_HZ == int(config.get("CONFIG_HZ", "0"))
        assert s.kconfig.CONFIG_COREBPF_NO_SUCH_OPTION is False
        with pytest.raises(SkeletonError, match="kernel's configuration"):
            s.kconfig.CONFIG_HZ = 1


@pytest.mark.parametrize(("value", "fits"), [("2147483647", True), ("-2147483648", True),
                                             ("2147483648", False), ("0x1ffffffff", False)])
def test_a_config_value_that_does_not_fit_its_extern_is_refused(value: str,
                                                                 fits: bool) -> None:
    """libbpf's range check for numeric .kconfig externs (CONFIG_HZ is an int here):
    a value outside the extern's type is a LoadError naming both, never an
    OverflowError (found by the loader fuzz with the type's size mutated)."""
    from corebpf.errors import LoadError
    from corebpf.loader import load

    config = {"CONFIG_HZ": value, "CONFIG_BPF_SYSCALL": "y"}
    if fits:
        load(PROGS / "kconfig.bpf.o", kconfig=config).close()
        return
    with pytest.raises(LoadError, match=rf"extern \(kcfg\) 'CONFIG_HZ': value {value} does "
                       "not fit in 4 bytes"):
        load(PROGS / "kconfig.bpf.o", kconfig=config)
