"""What is loaded in the kernel, as bpftool's inspection verbs show it: programs, maps
(and their elements), links and BTF objects.

Records are plain data; iterators walk the kernel's ids (BPF_*_GET_NEXT_ID) and read
each object through BPF_OBJ_GET_INFO_BY_FD, closing every fd they open. Objects are
chosen by bpftool's handles (:func:`parse_selector`: ``id N``, ``name NAME``,
``tag TAG``, ``pinned PATH``). The ``*_json`` and ``*_text`` functions print records in
the shapes of ``bpftool -j`` and of bpftool's plain output.

    from corebpf.inspect import iter_programs, parse_selector, select_maps
    for p in iter_programs():
        print(p.id, p.type, p.name, p.map_ids)
    sel, _ = parse_selector(["name", "counts"], "map")
    print(select_maps(sel))
"""

from .btf import BTFObject, btf_json, btf_text, iter_btf, load_btf, select_btf
from .common import InspectError, Selector, parse_selector
from .links import Link, iter_links, link_json, link_text, select_links
from .maps import (
    Entry,
    MapDump,
    MapRecord,
    delete_elem,
    dump_json,
    dump_maps,
    dump_text,
    iter_maps,
    lookup_elem,
    map_json,
    map_text,
    select_maps,
    update_elem,
)
from .programs import Program, iter_programs, program_json, program_text, select_programs
from .values import Obj, Raw, render
from .xlated import XlatedInsn, XlatedProgram, dump_xlated, xlated_json, xlated_text

__all__ = [
    "BTFObject",
    "Entry",
    "InspectError",
    "Link",
    "MapDump",
    "MapRecord",
    "Obj",
    "Program",
    "Raw",
    "Selector",
    "XlatedInsn",
    "XlatedProgram",
    "btf_json",
    "btf_text",
    "delete_elem",
    "dump_json",
    "dump_maps",
    "dump_text",
    "dump_xlated",
    "iter_btf",
    "iter_links",
    "iter_maps",
    "iter_programs",
    "link_json",
    "link_text",
    "load_btf",
    "lookup_elem",
    "map_json",
    "map_text",
    "parse_selector",
    "program_json",
    "program_text",
    "render",
    "select_btf",
    "select_links",
    "select_maps",
    "select_programs",
    "update_elem",
    "xlated_json",
    "xlated_text",
]
