"""Small wording helpers shared by messages, logs and model cards (no heavy imports, so the CLI
can use them before torch is loaded)."""

from __future__ import annotations


def plural(n: int, noun: str) -> str:
    """`1 image`, `2 images`: a count with its noun."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def first_of(items: list[object], n: int, sep: str = ", ") -> str:
    """The first `n` items joined by `sep`, with " and K more" when there are more."""
    shown = sep.join(str(i) for i in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def joined(parts: list[str], word: str = "and") -> str:
    """"a", "a and b", "a, b and c" (or another `word` than "and")."""
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} {word} {parts[-1]}"
