"""Small wording helpers shared by the printers."""

from __future__ import annotations

from collections.abc import Sequence


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 program``, ``2 programs``: counts agree in number with their noun."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


def table(rows: Sequence[tuple[str, ...]], right: frozenset[int] = frozenset()) -> str:
    """Rows as aligned columns (two spaces apart; columns in ``right`` right-aligned),
    one line each, the last column not padded."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


__all__ = ["plural", "table"]
