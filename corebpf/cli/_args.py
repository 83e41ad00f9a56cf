"""Flags that take several values (``--object A.o B.o``) beside positionals that may follow
them: what a flag swallowed that is not a BPF object goes back to the positionals."""

from __future__ import annotations

import os


def split_objects(values: list[str]) -> tuple[list[str], list[str]]:
    """(objects, the rest): a value that exists but is not a BPF ELF object (a directory,
    kernel BTF, a vmlinux) was meant as a positional; a missing path stays an object, so
    that the error names it as one."""
    from ..elf import is_bpf_object

    objects: list[str] = []
    rest: list[str] = []
    for v in values:
        (rest if os.path.exists(v) and not is_bpf_object(v) else objects).append(v)
    return objects, rest
