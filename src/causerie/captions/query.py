"""A search text made into an SQLite FTS5 query that cannot fail to parse.

Whatever people type (quotes, `*`, `NEAR`, `AND`, parentheses, a column filter such as
`text:`), FTS5 must only ever see words: each word is written as a quoted string (FTS5
"strings", section 3.1 of its documentation: a double quote inside one is doubled), so its
operators are never read. The words must all match (FTS5's implicit AND); the last one also
matches as a prefix, so a search box finds "bord" while someone is still typing "border".
"""

from __future__ import annotations

import re

__all__ = ["MAX_QUERY", "MAX_WORDS", "BadQuery", "fts_query"]

MAX_QUERY = 200
"""Characters of a search text."""
MAX_WORDS = 12

_WORD = re.compile(r"\w+", re.UNICODE)


class BadQuery(ValueError):
    """A search text that cannot be searched for (empty, no words, too long)."""


def fts_query(text: str) -> str:
    """The FTS5 MATCH expression for `text`; `BadQuery` (with a sentence) if there is none."""
    if len(text) > MAX_QUERY:
        raise BadQuery(f"a search is at most {MAX_QUERY} characters, not {len(text)}")
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        raise BadQuery("type a word or two to search for")
    words = words[:MAX_WORDS]
    quoted = [f'"{w.replace(chr(34), chr(34) * 2)}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)
