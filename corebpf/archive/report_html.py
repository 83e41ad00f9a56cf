"""The check matrix as one self-contained HTML page: inline CSS, no script, every piece of
text escaped (kernel names and messages come from files we do not control)."""

from __future__ import annotations

import os
from html import escape

from .check import FAILED, OK, POISONED, RESOLVED, CheckReport, KernelCheck, RelocationCheck

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.c { width: 1.6em; text-align: center; padding: 2px; }
.resolved { background: #b7e1b0; }
.poisoned { background: #f6d27a; }
.failed { background: #ee8a8a; }
.unread { background: #bbb; }
.ok { color: #1d6b1d; font-weight: bold; }
.st-poisoned { color: #8a5a00; font-weight: bold; }
.st-failed { color: #a40000; font-weight: bold; }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 8px; border: 1px solid #ccc; }
code { font-size: 0.95em; }
"""

_STATUS_CLASS = {OK: "ok", POISONED: "st-poisoned", FAILED: "st-failed"}
_MARK = {RESOLVED: "✓", POISONED: "P", FAILED: "✗"}


def _cell(r: RelocationCheck | None, row: KernelCheck) -> str:
    if r is None:
        why = row.error or "not relocated on this kernel"
        return f'<td class="c unread" title="{escape(why)}">&#8211;</td>'
    if r.result == RESOLVED:
        tip = f"resolved: {r.spec} -> {r.target}"
    else:
        tip = f"{r.result}: {r.message}"
    return f'<td class="c {r.result}" title="{escape(tip)}">{_MARK.get(r.result, "?")}</td>'


def render_html(report: CheckReport, *, title: str = "corebpf check") -> str:
    """The page: a summary per kernel, the kernels x relocations matrix with a legend, and
    every problem spelled out."""
    cols = report.columns()
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{escape(title)}</h1>"]
    counts = {s: sum(1 for k in report.kernels if k.status == s) for s in (OK, POISONED, FAILED)}
    objs = ", ".join(os.path.basename(o) for o in report.objects)
    out.append(f"<p>{len(report.kernels)} kernels: {counts[OK]} ok, {counts[POISONED]} "
               f"poisoned, {counts[FAILED]} failed. {len(cols)} CO-RE relocations in "
               f"{escape(objs)}.</p>")

    out.append('<p class="legend"><span class="resolved">✓ resolved</span>'
               '<span class="poisoned">P poisoned (instruction replaced; the verifier '
               'rejects it if reachable)</span><span class="failed">✗ failed (the object '
               'does not load)</span><span class="unread">&#8211; kernel BTF unreadable</span></p>')

    out.append("<h2>Matrix</h2>")
    out.append("<table><thead><tr><th>kernel</th><th>status</th>")
    for i, c in enumerate(cols, 1):
        head = f"{os.path.basename(c.object)} {c.program} #{c.index} {c.kind} {c.spec}"
        out.append(f'<th title="{escape(head)}">{i}</th>')
    out.append("</tr></thead><tbody>")
    for k in report.kernels:
        by_key = {r.key: r for r in k.relocations}
        st = k.status
        out.append(f'<tr><th title="{escape(k.path)}">{escape(k.kernel)}</th>'
                   f'<td class="{_STATUS_CLASS[st]}">{st}</td>')
        out.extend(_cell(by_key.get(c.key), k) for c in cols)
        out.append("</tr>")
    out.append("</tbody></table>")

    out.append("<h2>Relocations (columns)</h2><table><thead><tr><th>#</th><th>object</th>"
               "<th>program</th><th>relo</th><th>kind</th><th>access</th><th>local</th>"
               "<th>resolved</th><th>poisoned</th><th>failed</th></tr></thead><tbody>")
    for i, c in enumerate(cols, 1):
        n = {s: sum(1 for k in report.kernels for r in k.relocations
                    if r.key == c.key and r.result == s) for s in (RESOLVED, POISONED, FAILED)}
        out.append(f"<tr><td>{i}</td><td>{escape(os.path.basename(c.object))}</td>"
                   f"<td>{escape(c.program)}</td><td>#{c.index}</td><td>{escape(c.kind)}</td>"
                   f"<td><code>{escape(c.spec)}</code> <code>{escape(c.access)}</code></td>"
                   f"<td>{escape(str(c.local))}</td><td>{n[RESOLVED]}</td>"
                   f"<td>{n[POISONED]}</td><td>{n[FAILED]}</td></tr>")
    out.append("</tbody></table>")

    out.append("<h2>Kernels</h2><table><thead><tr><th>kernel</th><th>distro</th>"
               "<th>version</th><th>arch</th><th>status</th><th>file</th><th>problems</th>"
               "</tr></thead><tbody>")
    for k in report.kernels:
        problems = [k.error] if k.error else [
            f"{os.path.basename(r.object)} {r.program} #{r.index}: {r.message}"
            for r in k.relocations if r.result != RESOLVED]
        items = "".join(f"<li>{escape(p)}</li>" for p in problems)
        out.append(f"<tr><td>{escape(k.kernel)}</td><td>{escape(k.distro)}</td>"
                   f"<td>{escape(k.version)}</td><td>{escape(k.arch)}</td>"
                   f'<td class="{_STATUS_CLASS[k.status]}">{k.status}</td>'
                   f"<td><code>{escape(k.path)}</code></td>"
                   f"<td>{'<ul>' + items + '</ul>' if items else ''}</td></tr>")
    out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


__all__ = ["render_html"]
