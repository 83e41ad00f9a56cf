"""``corebpf build``: bpf2go's job for Python projects. On the developer's machine, turn
BPF C sources into CO-RE objects and their skeleton modules; nothing it does is needed at
run time, so clang is needed here only.

For each source: vmlinux.h from the running kernel's BTF (or ``btf``) in an include
directory, clang with CO-RE flags (``-g`` for BTF, ``-O2``) once per target (``bpfel``,
``bpfeb``, or an architecture, which adds ``-D__TARGET_ARCH_<arch>`` for PT_REGS_* and
builds ``<arch>.bpfel``), ``llvm-strip -g`` (drops DWARF, keeps .BTF and .BTF.ext), then the
skeleton module with every object variant in it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from ._record import field, record
from .errors import Error

__all__ = ["BuildError", "BuildResult", "Target", "build", "find_tool", "parse_targets",
           "write_vmlinux_h"]


class BuildError(Error):
    """A build that cannot run (no clang) or whose compile failed (with clang's output)."""


@record(frozen=True)
class Target:
    """One object variant: its name in the skeleton, clang's -target, the -D it adds."""

    variant: str
    clang_target: str
    define: str = ""


#: bpf2go's architecture names (and the kernel's) -> (__TARGET_ARCH_ name, byte order)
_ARCHES = {
    "x86": ("x86", "bpfel"), "amd64": ("x86", "bpfel"), "386": ("x86", "bpfel"),
    "arm64": ("arm64", "bpfel"), "aarch64": ("arm64", "bpfel"), "arm": ("arm", "bpfel"),
    "riscv64": ("riscv", "bpfel"), "riscv": ("riscv", "bpfel"),
    "ppc64le": ("powerpc", "bpfel"), "powerpc": ("powerpc", "bpfel"),
    "s390x": ("s390", "bpfeb"), "s390": ("s390", "bpfeb"),
    "mips": ("mips", "bpfeb"), "loong64": ("loongarch", "bpfel"),
    "loongarch": ("loongarch", "bpfel"),
}


def parse_targets(spec: str) -> list[Target]:
    """``bpfel,bpfeb`` (the default), ``bpf`` (both), or architectures (``amd64``,
    ``arm64``...: per-arch objects for programs that read pt_regs)."""
    out: list[Target] = []
    for word in (w.strip() for w in spec.split(",")):
        if not word:
            continue
        if word in ("bpfel", "bpfeb"):
            out.append(Target(word, word))
        elif word == "bpf":
            out += [Target("bpfel", "bpfel"), Target("bpfeb", "bpfeb")]
        elif word in _ARCHES:
            arch, endian = _ARCHES[word]
            out.append(Target(f"{arch}.{endian}", endian, f"-D__TARGET_ARCH_{arch}"))
        else:
            raise BuildError(f"unknown target {word!r} (bpfel, bpfeb, bpf, or one of "
                             f"{', '.join(sorted(_ARCHES))})")
    seen: dict[str, Target] = {}
    for t in out:
        seen.setdefault(t.variant, t)
    if not seen:
        raise BuildError("no target given")
    return list(seen.values())


def find_tool(names: list[str], env: str, what: str) -> str:
    """The first of ``names`` on PATH (``$env`` wins), or a BuildError saying how to get it."""
    override = os.environ.get(env)
    if override:
        path = shutil.which(override)
        if path is None:
            raise BuildError(f"${env}={override}: not found")
        return path
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    raise BuildError(f"corebpf build needs {what} ({' or '.join(names[:2])} on PATH, or "
                     f"${env}); on Debian: apt-get install clang llvm. Only building needs "
                     "it: the objects and skeletons it writes run without a compiler")


def _versions(base: str) -> list[str]:
    return [base] + [f"{base}-{v}" for v in range(21, 13, -1)]


def write_vmlinux_h(include_dir: str, btf: str | None = None) -> str:
    """``include_dir/vmlinux.h`` from ``btf`` (any container) or the running kernel's BTF;
    left untouched when unchanged, so make-style rebuilds stay quiet."""
    from .btf import load
    from .btf.files import KERNEL_BTF
    from .btf.format_c import to_c

    spec = load(btf or KERNEL_BTF)
    text = to_c(spec)
    os.makedirs(include_dir, exist_ok=True)
    path = os.path.join(include_dir, "vmlinux.h")
    try:
        with open(path) as f:
            if f.read() == text:
                return path
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


@record
class BuildResult:
    """What one source became: its objects by variant and its skeleton module."""

    source: str
    objects: dict[str, str] = field(default_factory=dict)
    skeleton: str | None = None


def _stem(source: str) -> str:
    base = os.path.basename(source)
    for suffix in (".bpf.c", ".c"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base.split(".")[0]


def build(sources: list[str], out_dir: str, *, btf: str | None = None,
          targets: list[Target] | None = None, cflags: list[str] | None = None,
          include_dirs: list[str] | None = None, skeleton: bool = True, embed: bool = True,
          extra_types: list[str] | None = None, vmlinux_h: bool = True,
          log: object = None) -> list[BuildResult]:
    """Compile each source for each target into ``out_dir/<name>.<variant>.o`` and write
    ``out_dir/<name>_skel.py`` (objects embedded, or named beside it)."""
    if not sources:
        raise BuildError("no source to build")
    for s in sources:
        if not os.path.isfile(s):
            raise BuildError(f"{s}: no such source file")
    targets = targets or parse_targets("bpfel,bpfeb")
    clang = find_tool(_versions("clang"), "CLANG", "clang")
    strip = find_tool(_versions("llvm-strip"), "STRIP", "llvm-strip")
    os.makedirs(out_dir, exist_ok=True)
    inc = [*(include_dirs or [])]
    vmlinux_text = ""
    inc_dir = os.path.join(out_dir, "include")
    if vmlinux_h:
        with open(write_vmlinux_h(inc_dir, btf)) as f:
            vmlinux_text = f.read()
        inc.append(inc_dir)
    multiarch = _multiarch_include()
    if multiarch:
        inc.append(multiarch)
    out = []
    for src in sources:
        stem = _stem(src)
        res = BuildResult(src)
        for t in targets:
            obj = os.path.join(out_dir, f"{stem}.{t.variant}.o")
            extra = _arch_regs_header(inc_dir, t, vmlinux_text) if vmlinux_text else []
            cmd = [clang, "-O2", "-g", "-Wall", "-Wno-unused-function", "-target",
                   t.clang_target, *([t.define] if t.define else []), *extra,
                   *(f"-I{d}" for d in inc), *(cflags or []), "-c", src, "-o", obj]
            _run(cmd, f"{src} ({t.variant})", log)
            _run([strip, "-g", obj], f"{obj}: strip", log)
            res.objects[t.variant] = obj
        if skeleton:
            from .skeleton.generate import generate

            path = os.path.join(out_dir, f"{stem}_skel.py")
            text = generate(res.objects, embed=embed, module_dir=out_dir,
                            extra_types=extra_types)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, path)
            res.skeleton = path
        out.append(res)
    return out


#: the register view bpf_tracing.h's PT_REGS_* read for an architecture, where the host's
#: vmlinux.h (another architecture's) lacks it; CO-RE relocates it on the target kernel
_ARCH_REGS = {
    "arm64": ("user_pt_regs", "struct user_pt_regs {\n\tunsigned long long regs[31];\n"
              "\tunsigned long long sp;\n\tunsigned long long pc;\n"
              "\tunsigned long long pstate;\n} __attribute__((preserve_access_index));\n"),
}


def _arch_regs_header(inc_dir: str, t: Target, vmlinux_text: str) -> list[str]:
    """``-include`` of a header declaring the target architecture's register struct when
    vmlinux.h (from this machine) does not have it: per-arch objects cross-build."""
    arch = t.define.removeprefix("-D__TARGET_ARCH_") if t.define else ""
    if arch not in _ARCH_REGS:
        return []
    name, body = _ARCH_REGS[arch]
    if f"struct {name} {{" in vmlinux_text:
        return []
    path = os.path.join(inc_dir, f"corebpf_regs_{arch}.h")
    text = f"/* written by corebpf build for {arch} objects */\n#pragma once\n{body}"
    try:
        with open(path) as f:
            same = f.read() == text
    except OSError:
        same = False
    if not same:
        with open(path, "w") as f:
            f.write(text)
    return ["-include", path]


def _multiarch_include() -> str | None:
    """Debian's /usr/include/<triplet> (asm/types.h for linux/bpf.h), if there is one."""
    import sysconfig

    triplet = sysconfig.get_config_var("MULTIARCH")
    if triplet:
        path = f"/usr/include/{triplet}"
        if os.path.isdir(path):
            return path
    return None


def _run(cmd: list[str], what: str, log: object) -> None:
    if log is not None:
        print(" ".join(cmd), file=log)  # type: ignore[call-overload]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise BuildError(f"{what}: cannot run {cmd[0]}: {e.strerror}") from None
    if p.returncode != 0:
        raise BuildError(f"{what}: {os.path.basename(cmd[0])} failed (exit {p.returncode}):\n"
                         f"{(p.stderr or p.stdout).rstrip()}")
    if p.stderr and log is not None:
        sys.stderr.write(p.stderr)
