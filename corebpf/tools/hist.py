"""Histograms and time columns as libbpf-tools prints them (trace_helpers.c:
print_log2_hist, print_linear_hist), so that existing readers of their output carry over."""

from __future__ import annotations

import time

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

__all__ = ["linear_hist_lines", "log2_hist_json", "log2_hist_lines", "log2_hists_report",
           "strftime_now", "take_all"]


def _stars(val: int, val_max: int, width: int) -> str:
    n = min(val, val_max) * width // val_max if val_max else 0
    return "*" * n + " " * (width - n) + ("+" if val > val_max else "")


def log2_hist_lines(vals: Sequence[int], val_type: str) -> list[str]:
    """print_log2_hist: a row per power-of-two slot up to the last non-empty one
    (nothing at all when every slot is empty); wider columns past slot 32."""
    idx_max = -1
    val_max = 0
    for i, v in enumerate(vals):
        if v > 0:
            idx_max = i
        val_max = max(val_max, v)
    if idx_max < 0:
        return []
    narrow = idx_max <= 32
    stars = 40 if narrow else 20
    width = 10 if narrow else 20
    lines = [f"{'':{5 if narrow else 15}}{val_type:<{19 if narrow else 29}} : count    "
             "distribution"]
    for i in range(idx_max + 1):
        low = (1 << (i + 1)) >> 1
        high = (1 << (i + 1)) - 1
        if low == high:
            low -= 1
        v = vals[i]
        lines.append(f"{low:>{width}} -> {high:<{width}} : {v:<8} |"
                     f"{_stars(v, val_max, stars)}|")
    return lines


def linear_hist_lines(vals: Sequence[int], base: int, step: int, val_type: str) -> list[str]:
    """print_linear_hist: one row per bucket from the first to the last non-empty one."""
    idx_min = next((i for i, v in enumerate(vals) if v > 0), -1)
    if idx_min < 0:
        return []
    idx_max = max(i for i, v in enumerate(vals) if v > 0)
    val_max = max(vals)
    lines = [f"     {val_type:<13} : count     distribution"]
    for i in range(idx_min, idx_max + 1):
        v = vals[i]
        lines.append(f"        {base + i * step:<6} : {v:<8} |{_stars(v, val_max, 40)}|")
    return lines


def log2_hist_json(vals: Sequence[int], val_type: str) -> list[dict[str, int]]:
    """The same slots as objects: [{"low", "high", "count"}] (empty slots past the last
    non-empty one left out)."""
    out = []
    last = max((i for i, v in enumerate(vals) if v > 0), default=-1)
    for i in range(last + 1):
        low = (1 << (i + 1)) >> 1
        high = (1 << (i + 1)) - 1
        out.append({"low": low - 1 if low == high else low, "high": high, "count": vals[i]})
    return out


def strftime_now(fmt: str = "%H:%M:%S", clock: Callable[[], float] = time.time) -> str:
    """The wall-clock time column (``-T``) as the C tools print it (localtime)."""
    return time.strftime(fmt, time.localtime(clock()))


def take_all(hists: Any) -> list[tuple[Any, Any]]:
    """Every entry of a histogram map in the map's order, then those deleted: what the C
    histogram tools do each interval."""
    entries = list(hists.items())
    for key, _ in entries:
        hists.delete(key)
    return entries


def log2_hists_report(hists: Sequence[tuple[str, dict[str, Any], Sequence[int]]], unit: str,
                      *, timestamp: bool, as_json: bool) -> str:
    """One interval of log2 histograms, each ``(label line(s), JSON keys, slots)``: a
    blank line, the time with -T, then each label and print_log2_hist's rows; or one JSON
    line with ``time``, ``unit`` and ``hists``."""
    if as_json:
        import json

        obj: dict[str, Any] = {}
        if timestamp:
            obj["time"] = strftime_now()
        obj["unit"] = unit
        obj["hists"] = [{**keys, "slots": log2_hist_json(slots, unit)}
                        for _, keys, slots in hists]
        return json.dumps(obj) + "\n"
    text = "\n"
    if timestamp:
        text += f"{strftime_now():<8}\n"
    for label, _, slots in hists:
        text += label
        text += "".join(ln + "\n" for ln in log2_hist_lines(slots, unit))
    return text
