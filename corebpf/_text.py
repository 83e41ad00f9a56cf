"""Small wording helpers shared by the printers."""

from __future__ import annotations


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 program``, ``2 programs``: counts agree in number with their noun."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


__all__ = ["plural"]
