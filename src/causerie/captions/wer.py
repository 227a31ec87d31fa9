"""Word error rate: how far recognized words are from what was said (for tests and benchmarks).

WER = (substitutions + deletions + insertions) / words said, by Levenshtein alignment of the
two word sequences, after both are normalised alike (lower case, punctuation and apostrophes
dropped, so "market's" and "markets" are one word).
"""

from __future__ import annotations

import re

__all__ = ["normalise", "word_error_rate"]

_NOT_WORD = re.compile(r"[^\w\s]|_", re.UNICODE)


def normalise(text: str) -> list[str]:
    """The words of `text`, lower case, without punctuation."""
    return _NOT_WORD.sub("", text.lower()).split()


def word_error_rate(said: str, heard: str) -> float:
    """Edits per word said to turn `said` into `heard` (0: identical; may exceed 1)."""
    reference, hypothesis = normalise(said), normalise(heard)
    if not reference:
        return 0.0 if not hypothesis else float(len(hypothesis))
    previous = list(range(len(hypothesis) + 1))
    for i, word in enumerate(reference, 1):
        current = [i]
        for j, other in enumerate(hypothesis, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
            )
        previous = current
    return previous[-1] / len(reference)
