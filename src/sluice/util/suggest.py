"""Did-you-mean: the closest known name to a misspelt one, for error messages."""

from __future__ import annotations

from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate most like ``word``, or None when none is close enough."""
    import difflib  # only when a name is wrong: not on every start

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``; did you mean `x`?`` for the closest candidate, or an empty string."""
    close = closest(word, candidates)
    return f"; did you mean `{close}`?" if close else ""
