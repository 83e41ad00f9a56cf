"""Make tests/data/btf/*.btf.xz: real Debian kernels' BTF, extracted by corebpf itself.

Each package is fetched with ``apt-get download``; corebpf.kernel_image then takes
.deb -> boot/vmlinuz -> vmlinux -> .BTF, so the test data depends on no outside tool or
archive, and SOURCES.md records hashes to re-check it against Debian.

    python scripts/fetch_debian_btf.py                 # default set, newest in apt
    python scripts/fetch_debian_btf.py PACKAGE...      # chosen packages
    python scripts/fetch_debian_btf.py --raw-dir /tmp/btf   # also keep raw BTF (bpftool)

The default set is the newest linux-image-6.1.0-N-{,cloud-,rt-}amd64-unsigned and the
newest linux-image-6.12.N+deb12-amd64-unsigned. 6.12 kernels are zstd-packed: Python
< 3.14 needs ``pip install zstandard`` for them. If the files pass BUDGET bytes, the
PREEMPT_RT kernel is dropped (it adds little over its generic sibling).
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corebpf import kernel_image  # noqa: E402

OUT = ROOT / "tests" / "data" / "btf"
BUDGET = 6_000_000  # bytes of .btf.xz in the repository
BTF_MAGIC = b"\x9f\xeb"  # 0xeB9F, little endian
XZ_PRESET = 9 | lzma.PRESET_EXTREME


@dataclass
class Kernel:
    package: str
    version: str
    release: str
    compression: str
    deb_sha256: str
    btf_sha256: str
    raw_size: int
    xz_size: int

    @property
    def file(self) -> str:
        return f"{self.release}.btf.xz"


def unsigned_images() -> list[str]:
    """Every ``linux-image-*-unsigned`` apt knows; runs ``apt-get update`` if it knows none
    (a fresh container has empty lists)."""
    for attempt in range(2):
        found = subprocess.run(
            ["apt-cache", "search", "--names-only", "^linux-image-.*-unsigned$"],
            check=True, capture_output=True, text=True,
        ).stdout
        names = [line.split(" ", 1)[0] for line in found.splitlines() if line.strip()]
        if names or attempt:
            return names
        subprocess.run(["apt-get", "update", "-q"], check=True)
    return []


def _newest(names: list[str], pattern: str) -> str | None:
    """The name matching ``pattern`` whose numeric group is highest (10 > 9)."""
    best: tuple[int, str] | None = None
    for name in names:
        m = re.fullmatch(pattern, name)
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), name)
    return None if best is None else best[1]


def default_packages(names: list[str]) -> list[str]:
    """The newest 6.1 generic kernel with its cloud and rt siblings, and the newest 6.12."""
    chosen: list[str] = []
    generic = _newest(names, r"linux-image-6\.1\.0-(\d+)-amd64-unsigned")
    if generic is not None:
        abi = generic.removeprefix("linux-image-6.1.0-").split("-", 1)[0]
        for flavour in ("amd64", "cloud-amd64", "rt-amd64"):
            name = f"linux-image-6.1.0-{abi}-{flavour}-unsigned"
            if name in names:
                chosen.append(name)
    new = _newest(names, r"linux-image-6\.12\.(\d+)\+deb12-amd64-unsigned")
    if new is not None:
        chosen.append(new)
    if not chosen:
        raise SystemExit("apt knows no linux-image-6.1.0-*/6.12.*+deb12 unsigned packages")
    return chosen


def download(package: str, where: Path) -> Path:
    """The package's .deb in ``where``, fetched with apt-get unless already there."""
    found = sorted(where.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", "-q", package], cwd=where, check=True)
        found = sorted(where.glob(f"{package}_*.deb"))
    if len(found) != 1:
        raise SystemExit(f"{package}: expected one .deb in {where}, found {found}")
    return found[0]


def extract(deb: Path, out: Path, raw_dir: Path | None) -> Kernel:
    data = deb.read_bytes()
    control = kernel_image.deb_control(data)
    release, image = kernel_image.deb_vmlinuz(data)
    compression = kernel_image.image_compression(image) or "unknown"
    btf = kernel_image.elf_section(kernel_image.extract_vmlinux(image), ".BTF")
    if not btf or not btf.startswith(BTF_MAGIC):
        raise SystemExit(f"{deb.name}: vmlinux has no .BTF section with the BTF magic")
    packed = lzma.compress(btf, preset=XZ_PRESET)
    kernel = Kernel(
        package=control.get("Package", deb.name.split("_", 1)[0]),
        version=control.get("Version", "?"),
        release=release,
        compression=compression,
        deb_sha256=hashlib.sha256(data).hexdigest(),
        btf_sha256=hashlib.sha256(btf).hexdigest(),
        raw_size=len(btf),
        xz_size=len(packed),
    )
    (out / kernel.file).write_bytes(packed)
    if raw_dir is not None:
        raw_dir.mkdir(parents=True, exist_ok=True)
        (raw_dir / f"{release}.btf").write_bytes(btf)
    return kernel


def extract_modules(deb: Path, out: Path, modules: list[str]) -> list[str]:
    """Split BTF of kernel modules (``name.ko`` in the package) as
    ``modules/<release>/<name>.btf.xz``: their type ids and strings continue vmlinux's."""
    import io
    import tarfile

    data = deb.read_bytes()
    release, _ = kernel_image.deb_vmlinuz(data)
    members = kernel_image.deb_members(data)
    name = next(k for k in members if k.startswith("data.tar"))
    raw = members[name]
    if name.endswith(".xz"):
        raw = kernel_image.decompress(raw, "xz")
    written = []
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for m in tar.getmembers():
            base = m.name.rsplit("/", 1)[-1]
            if not m.isreg() or base.removesuffix(".ko") not in modules or not base.endswith(
                    ".ko"):
                continue
            f = tar.extractfile(m)
            assert f is not None
            btf = kernel_image.elf_section(f.read(), ".BTF")
            if not btf:
                raise SystemExit(f"{m.name}: no .BTF section")
            dest = out / "modules" / release
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / f"{base.removesuffix('.ko')}.btf.xz"
            target.write_bytes(lzma.compress(btf, preset=XZ_PRESET))
            written.append(f"{target.relative_to(out)} ({len(btf)} bytes of split BTF, "
                           f"sha256 {hashlib.sha256(btf).hexdigest()})")
    return written


def write_sources(out: Path, kernels: list[Kernel], notes: list[str]) -> None:
    total = sum(k.xz_size for k in kernels)
    lines = [
        "# Debian kernel BTF",
        "",
        "Each `<release>.btf.xz` is the `.BTF` section of a Debian 12 (bookworm) kernel, taken",
        "from the package's `boot/vmlinuz-*` by `corebpf.kernel_image` (no outside tools) and",
        "packed with xz preset 9e. Regenerate with `python scripts/fetch_debian_btf.py`.",
        "The data is derived from Linux (GPL-2.0) as built by Debian.",
        "",
        "| file | package | version | vmlinuz packing | .deb sha256 | raw BTF sha256 "
        "| raw bytes | xz bytes |",
        "| --- | --- | --- | --- | --- | --- | ---: | ---: |",
    ]
    for k in kernels:
        lines.append(
            f"| {k.file} | {k.package} | {k.version} | {k.compression} | `{k.deb_sha256}` "
            f"| `{k.btf_sha256}` | {k.raw_size} | {k.xz_size} |"
        )
    lines += ["", f"Total: {total} bytes compressed."]
    if notes:
        lines += [""] + [f"Note: {n}" for n in notes]
    (out / "SOURCES.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help="Debian package names (default: see doc)")
    parser.add_argument("--out", type=Path, default=OUT, help="output directory")
    parser.add_argument("--cache", type=Path, help="keep/reuse the .deb files here")
    parser.add_argument("--raw-dir", type=Path, help="also write the raw BTF here")
    parser.add_argument("--budget", type=int, default=BUDGET, help="max total .btf.xz bytes")
    parser.add_argument("--modules", default="veth,nf_conntrack",
                        help="modules whose split BTF to keep, from the first package "
                        "(comma-separated; empty for none)")
    args = parser.parse_args(argv)

    packages = args.packages or default_packages(unsigned_images())
    args.out.mkdir(parents=True, exist_ok=True)
    kernels: list[Kernel] = []
    module_notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="corebpf-debs-") as tmp:
        where = args.cache or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        for package in packages:
            deb = download(package, where)
            try:
                kernel = extract(deb, args.out, args.raw_dir)
            except ValueError as exc:  # e.g. a zstd kernel without the zstandard module
                raise SystemExit(f"{deb.name}: {exc}") from exc
            kernels.append(kernel)
            if args.modules and len(kernels) == 1:
                module_notes = extract_modules(deb, args.out, args.modules.split(","))
            print(f"{kernel.file}: {kernel.compression} vmlinuz, {kernel.raw_size} bytes of "
                  f"BTF, {kernel.xz_size} packed", flush=True)

    notes: list[str] = [f"module {m}" for m in module_notes]
    total = sum(k.xz_size for k in kernels)
    rt = [k for k in kernels if "-rt-" in k.package]
    if total > args.budget and rt and len(kernels) > len(rt):
        for k in rt:
            (args.out / k.file).unlink()
            kernels.remove(k)
        dropped = ", ".join(k.package for k in rt)
        notes.append(f"{dropped} dropped: the set came to {total} bytes, over the "
                     f"{args.budget}-byte budget.")
        print(notes[-1], file=sys.stderr)
    write_sources(args.out, kernels, notes)
    listed = {k.file for k in kernels}
    stale = sorted(p.name for p in args.out.glob("*.btf.xz") if p.name not in listed)
    if stale:
        print(f"warning: {args.out} also holds {stale}, not in SOURCES.md", file=sys.stderr)
    print(f"total {sum(k.xz_size for k in kernels)} bytes in {len(kernels)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
