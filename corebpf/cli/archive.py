"""``corebpf archive``: index a BTF archive, bundle minimized BTF for objects across it,
look a machine up in a bundle, unpack an archive tarball safely."""

from __future__ import annotations

import argparse
import sys

from ._pool import add_pool_options, positive, progress

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    a = sub.add_parser("archive", help="BTF archives: index, bundle, lookup, extract",
                       description="Work with archives of kernel BTF (BTFHub-layout trees, "
                       "Debian/Ubuntu kernel packages, vmlinux and raw BTF files).")
    asub = a.add_subparsers(dest="archive_command", required=True, metavar="WHAT",
                            prog="corebpf archive")

    p = asub.add_parser("index", help="distro, version, arch, release, sha256, size and "
                        "type count of every kernel",
                        description="Read every kernel of the archive once and list it. "
                        "Unreadable kernels are reported and skipped (exit status 1).")
    p.add_argument("archive", metavar="DIR", help="archive directory (or one file)")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the index as JSON")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_pool_options(p)
    p.set_defaults(func=run_index)

    p = asub.add_parser("bundle", help="minimized BTF of every kernel for some objects, "
                        "deduplicated, in one file",
                        description="Minimize each kernel's BTF for the objects' CO-RE "
                        "relocations and pack the results, each distinct BTF stored once, "
                        "with an index, into one xz-compressed file to ship with the "
                        "program. Unreadable kernels are reported and skipped.")
    p.add_argument("archive", metavar="DIR", nargs="?",
                   help="archive directory (or one file)")
    p.add_argument("--object", dest="objects", nargs="+", action="extend", required=True,
                   metavar="OBJ", help="clang-built BPF object (several after one flag, or "
                   "repeated)")
    p.add_argument("-o", "--output", required=True, metavar="BUNDLE",
                   help="bundle file to write (e.g. btf-bundle.tar.xz)")
    add_pool_options(p)
    p.set_defaults(func=run_bundle)

    p = asub.add_parser("lookup", help="the BTF of this machine (or the one described) in "
                        "a bundle",
                        description="Pick a kernel's BTF from a bundle by /etc/os-release "
                        "(ID, VERSION_ID), the architecture and uname -r, each overridable. "
                        "Exit status 1 when the bundle has none.")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--distro", help="os-release ID (default: this machine's)")
    p.add_argument("--distro-version", dest="version",
                   help="os-release VERSION_ID (default: this machine's)")
    p.add_argument("--arch", help="architecture (default: uname -m)")
    p.add_argument("--release", help="kernel release (default: uname -r)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the BTF found here")
    p.set_defaults(func=run_lookup)

    p = asub.add_parser("list", help="the kernels a bundle holds",
                        description="Print a bundle's index: each kernel and its BTF blob.")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--json", action="store_true", help="print the index as JSON")
    p.set_defaults(func=run_list)

    p = asub.add_parser("extract", help="unpack an archive tarball safely",
                        description="Unpack a tar (.tar, .tar.gz, .tar.xz) of an archive "
                        "into DIR, refusing absolute paths, '..', links, devices and "
                        "members over the size bound; each refused member is reported.")
    p.add_argument("tarball", metavar="TARBALL")
    p.add_argument("dest", metavar="DIR")
    p.add_argument("--max-member", type=positive, default=256 << 20, metavar="BYTES",
                   help="largest member written (default 256 MiB)")
    p.set_defaults(func=run_extract)

    p = asub.add_parser("fetch", help="this machine's BTF from a BTF service, whole or "
                        "minimized for objects",
                        description="Ask a BTF service (corebpf serve, or a btfhub-online "
                        "compatible one) for this machine's BTF, looked up by /etc/os-release "
                        "(ID, VERSION_ID), the architecture and uname -r, each overridable: "
                        "the kernel's whole BTF, or with --object minimized for those "
                        "objects. Written as raw BTF. Answers are cached (revalidated with "
                        "the service's ETag; used as they are when it cannot be reached).")
    p.add_argument("--service", required=True, metavar="URL",
                   help="the service, e.g. http://127.0.0.1:8080")
    p.add_argument("--object", dest="objects", nargs="+", action="extend", metavar="OBJ",
                   help="clang-built BPF object to minimize for (several after one flag, "
                   "or repeated)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="raw BTF out (default: RELEASE.btf; '-' for stdout)")
    p.add_argument("--distro", help="os-release ID (default: this machine's)")
    p.add_argument("--distro-version", dest="version",
                   help="os-release VERSION_ID (default: this machine's)")
    p.add_argument("--arch", help="architecture (default: uname -m)")
    p.add_argument("--release", help="kernel release (default: uname -r)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="per request (default 60)")
    p.add_argument("--no-cache", action="store_true", help="neither use nor fill the cache")
    p.set_defaults(func=run_fetch)


def run_index(args: argparse.Namespace) -> int:
    from ..archive.index import build_index
    from ._pool import executor, worker_path

    with executor(args) as pool:
        index = build_index(worker_path(args, args.archive), executor=pool, jobs=args.jobs,
                            progress=progress(args))
    for path, error in index.errors:
        print(f"corebpf: skipped {path}: {error}", file=sys.stderr)
    if args.output:
        index.write(args.output)
    if args.json:
        import json

        json.dump(index.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        rows = [("DISTRO", "VERSION", "ARCH", "RELEASE", "TYPES", "BTF SIZE", "SHA256")]
        rows += [(k.distro or "-", k.version or "-", k.arch or "-", k.release or "-",
                  str(k.types), str(k.btf_size), k.sha256[:12]) for k in index.kernels]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 1 if index.errors else 0


def run_bundle(args: argparse.Namespace) -> int:
    from ..archive.bundle import build_bundle
    from ._args import split_objects
    from ._pool import executor, worker_path

    objects, rest = split_objects(args.objects)  # `--object A.o B.o DIR`
    archives = [args.archive, *rest] if args.archive else rest
    if len(archives) != 1 or not objects:
        print("corebpf archive bundle: expected one archive DIR and at least one --object "
              f"(got {', '.join(archives) or 'no archive'})", file=sys.stderr)
        return 2
    with executor(args) as pool:
        r = build_bundle(objects, worker_path(args, archives[0]), args.output,
                         executor=pool, jobs=args.jobs, progress=progress(args))
    for path, error in r.skipped:
        print(f"corebpf: skipped {path}: {error}", file=sys.stderr)
    from .._text import plural

    print(f"{r.path}: {plural(r.kernels, 'kernel')}, {r.blobs} distinct BTF "
          f"(dedup ratio {r.dedup_ratio:.2f}), {r.raw_bytes} -> {r.stored_bytes} bytes "
          f"minimized, {r.file_size} bytes compressed")
    return 1 if r.skipped else 0


def run_lookup(args: argparse.Namespace) -> int:
    from ..archive.bundle import Bundle

    b = Bundle.open(args.bundle)
    match = b.require(distro=args.distro, version=args.version, arch=args.arch,
                      release=args.release)
    k = match.kernel
    print(f"{k.distro}/{k.version}/{k.arch}/{k.release}: {k.size} bytes, {k.types} types "
          f"(matched by {match.rule})")
    if args.output:
        try:
            with open(args.output, "wb") as f:
                f.write(match.btf)
        except OSError as e:
            print(f"corebpf: {args.output}: cannot write: {e.strerror}", file=sys.stderr)
            return 1
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ..archive.bundle import Bundle

    b = Bundle.open(args.bundle)
    if args.json:
        import json

        json.dump(b.index, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    from .._text import plural, table

    rows = [("KERNEL", "BTF", "BYTES", "TYPES")]
    rows += [("/".join(k.key), k.btf[:12], str(k.size), str(k.types)) for k in b.kernels]
    sys.stdout.write(table(list(rows), right=frozenset({2, 3})))
    print(f"{plural(len(b.kernels), 'kernel')}, {b.blob_count} distinct BTF")
    return 0


def run_extract(args: argparse.Namespace) -> int:
    from ..archive.sources import safe_extract

    report = safe_extract(args.tarball, args.dest, max_member=args.max_member)
    for name, why in report.refused:
        print(f"corebpf: refused {name!r}: {why}", file=sys.stderr)
    from .._text import plural

    print(f"{plural(len(report.written), 'file')} written to {args.dest}")
    return 1 if report.refused else 0


def run_fetch(args: argparse.Namespace) -> int:
    from ..archive.service import ServiceClient, write_atomic
    from ..archive.sources import machine_key

    key = machine_key(args.distro, args.version, args.arch, args.release)
    client = ServiceClient(args.service, timeout=args.timeout, cache=not args.no_cache)
    got = client.fetch(key, args.objects or ())
    out = args.output or f"{key[3]}.btf"
    if out == "-":
        sys.stdout.buffer.write(got.btf)
        sys.stdout.flush()
    else:
        write_atomic(out, got.btf)
    from .._text import plural

    what = (f"minimized for {plural(len(args.objects), 'object')}" if args.objects
            else "whole")
    how = {"network": "fetched", "revalidated": "cached copy, current",
           "stale": "cached copy: the service cannot be reached"}[got.origin]
    print(f"{out}: {len(got.btf)} bytes of raw BTF of {'/'.join(got.key)} ({what}) from "
          f"{client.url} ({how})", file=sys.stderr if out == "-" else sys.stdout)
    return 0
