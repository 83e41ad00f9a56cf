"""Ready tools that run on any kernel with no compiler: ``corebpf tool NAME``.

Each has the options, header and columns of the libbpf-tools tool of the same name, its
BPF C in ``bpf/`` (built with ``corebpf build`` into ``objects/``, committed), and the
shared parts in :mod:`corebpf.tools.base` and :mod:`corebpf.tools.hist`.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False

if TYPE_CHECKING:
    from .base import Tool

#: name -> what it traces (``corebpf tool --list``)
TOOLS = {
    "bashreadline": "Print entered bash commands from all running shells",
    "biolatency": "Summarize block device I/O latency as a histogram",
    "execsnoop": "Trace exec syscalls",
    "exitsnoop": "Trace process termination",
    "opensnoop": "Trace open family syscalls",
    "runqlat": "Summarize run queue (scheduler) latency as a histogram",
    "sigsnoop": "Trace standard and real-time signals",
    "syscount": "Summarize syscall counts and latencies",
    "tcpconnect": "Count/Trace active tcp connections",
    "tcpstates": "Trace TCP session state changes and durations",
}


def load_tool(name: str) -> type[Tool]:
    """The Tool class of ``name`` (its module imported only now)."""
    from .base import ToolError

    if name not in TOOLS:
        raise ToolError(f"no tool {name!r} (tools: {', '.join(sorted(TOOLS))})")
    module = importlib.import_module(f"{__name__}.{name}")
    cls: type[Tool] = module.TOOL
    return cls


__all__ = ["TOOLS", "load_tool"]
