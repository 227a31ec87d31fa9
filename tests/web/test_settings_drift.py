"""The pages keep no copy of the server's limits or reactions that could drift from them.

The pages read the limits and the reactions from `GET /api/settings`. This scans their files
(HTML, JavaScript, CSS) for what would be a copy — a `maxlength`, `max` or `maxLength` given
a number, a counter written as "0/280", a constant named after a limit, an emoji — and checks
each one against what a real node serves. A copy that agrees passes; one that differs fails.
tests/web/test_pages.py checks in a browser that the pages follow whatever the settings say.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import causerie

STATIC = Path(causerie.__file__).parent / "web" / "static"

# The form fields that hold text the server limits, by id → the limit (see api/settings.py).
FIELDS = {
    "create-name": "title",
    "create-description": "description",
    "name": "name",
    "question-text": "question",
    "create-capacity": "capacity",
    "capacity-input": "capacity",
    "flag-note": "report_note",
    "invite-hours": "invite_hours",
    "invite-note": "invite_note",
    "name-input": "name",
    "search-input": "search",
}
# Emoji that are pictures on the pages, not reactions: what each one is.
DECORATIVE = {"✋": "the raised hand on the request-to-speak button"}
# What a constant named after a limit is called in the pages' code, → the limit.
LIMIT_WORDS = {
    "QUESTION": "question",
    "NAME": "name",
    "TITLE": "title",
    "DESCRIPTION": "description",
    "CAPACITY": "capacity",
}
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff]\ufe0f?")
TAG = re.compile(r"<(?:input|textarea)\b[^>]*>", re.S)
ATTRIBUTE = re.compile(r'([\w-]+)="([^"]*)"')
JS_LIMIT = re.compile(
    r"""(?:\.maxLength|\.max|["']maxlength["']|["']max["'])\s*[=,]\s*["']?([\d_]+)"""
)
JS_CONSTANT = re.compile(r"\b(?:const|let|var)\s+([A-Z_]+)\s*=\s*([\d_]+)\b")
COUNTER = re.compile(r'id="question-counter"[^>]*>\s*\d+\s*/\s*(\d+)')


def page_files(*suffixes: str) -> list[Path]:
    return sorted(
        path
        for path in STATIC.rglob("*")
        if path.suffix in suffixes and "vendor" not in path.relative_to(STATIC).parts
    )


@pytest.fixture
async def served(client) -> dict:
    response = await client.get("/api/settings")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_scan_sees_the_pages() -> None:
    # Guards against a scan that passes because it finds nothing to read.
    names = {path.relative_to(STATIC).as_posix() for path in page_files(".html", ".js")}
    assert {"space.html", "studio.html", "questions.js", "reactions.js"} <= names
    assert "studio/capacity.js" in names


def html_limits(text: str) -> list[tuple[str, str, int]]:
    """(element id, attribute, number) for every length or number limit on a form field."""
    found = []
    for tag in TAG.findall(text):
        attributes = dict(ATTRIBUTE.findall(tag))
        for name in ("maxlength", "minlength", "max"):
            if name == "max" and attributes.get("type") != "number":
                continue  # a range slider's end is not a limit of the server's
            if name in attributes:
                found.append((attributes.get("id", "?"), name, int(attributes[name])))
    return found


async def test_html_limits_are_the_served_ones(served: dict) -> None:
    limits = served["limits"]
    for path in page_files(".html"):
        text = path.read_text()
        for element, attribute, number in html_limits(text):
            assert element in FIELDS, f"{path.name}: #{element} has {attribute}={number}"
            if attribute != "minlength":
                assert number == limits[FIELDS[element]], (
                    f"{path.name}: #{element} {attribute}={number}, the server says "
                    f"{limits[FIELDS[element]]} ({FIELDS[element]})"
                )
        for most in COUNTER.findall(text):
            assert int(most) == limits["question"], f"{path.name}: question counter /{most}"


async def test_script_limits_are_the_served_ones(served: dict) -> None:
    limits = served["limits"]
    values = set(limits.values())
    for path in page_files(".js", ".html"):
        text = path.read_text()
        for number in JS_LIMIT.findall(text):
            assert int(number) in values, f"{path.name}: a limit of {number} set by hand"
        for name, number in JS_CONSTANT.findall(text):
            words = [limit for word, limit in LIMIT_WORDS.items() if word in name.split("_")]
            if words and ("MAX" in name or "LIMIT" in name):
                assert int(number) == limits[words[0]], (
                    f"{path.name}: {name} = {number}, the server says {limits[words[0]]}"
                )


async def test_no_reaction_is_copied_differently(served: dict) -> None:
    reactions = {reaction["emoji"].rstrip("\ufe0f") for reaction in served["reactions"]}
    for path in page_files(".html", ".js", ".css"):
        for emoji in EMOJI.findall(path.read_text()):
            bare = emoji.rstrip("\ufe0f")
            assert bare in DECORATIVE or bare in reactions, (
                f"{path.name}: {emoji} is not a reaction the server takes"
            )


@pytest.mark.parametrize(
    ("text", "broken"),
    [
        ('<textarea id="question-text" maxlength="300"></textarea>', "html"),
        ('<input id="name" type="text" maxlength="61">', "html"),
        ('<input id="create-capacity" type="number" min="1" max="5">', "html"),
        ('<input id="mystery" type="text" maxlength="10">', "html"),
        ('<span id="question-counter" class="counter">0/300</span>', "html"),
        ("this.ui.text.maxLength = 300;", "script"),
        ('input.setAttribute("maxlength", "61");', "script"),
        ("const QUESTION_MAX = 300;", "script"),
        ("const MAX_CAPACITY = 10_000;", "script"),
        ('const REACTIONS = ["👏", "🦆"];', "emoji"),
    ],
)
async def test_the_scan_catches_a_copy_that_drifted(
    served: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, broken: str
) -> None:
    """Each kind of copy, once out of step with the server, makes its check fail."""
    (tmp_path / "page.html").write_text(text)
    (tmp_path / "page.js").write_text(text)
    monkeypatch.setattr(f"{__name__}.STATIC", tmp_path)
    check = {
        "html": test_html_limits_are_the_served_ones,
        "script": test_script_limits_are_the_served_ones,
        "emoji": test_no_reaction_is_copied_differently,
    }[broken]
    with pytest.raises(AssertionError):
        await check(served)


async def test_a_copy_that_agrees_passes(
    served: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = served["limits"]
    first = served["reactions"][0]["emoji"]
    text = (
        f'<textarea id="question-text" maxlength="{limits["question"]}"></textarea>'
        f'<span id="question-counter">0/{limits["question"]}</span>'
        f"<script>input.maxLength = {limits['name']}; const TITLE_MAX = {limits['title']};"
        f' const choices = ["{first}"];</script>'
    )
    (tmp_path / "page.html").write_text(text)
    monkeypatch.setattr(f"{__name__}.STATIC", tmp_path)
    await test_html_limits_are_the_served_ones(served)
    await test_script_limits_are_the_served_ones(served)
    await test_no_reaction_is_copied_differently(served)
