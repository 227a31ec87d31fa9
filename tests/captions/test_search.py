"""The transcripts' index on a real SQLite FTS5 database."""

from __future__ import annotations

from pathlib import Path

import pytest

from causerie.captions.query import BadQuery
from causerie.captions.search import TranscriptIndex
from causerie.captions.webvtt import Cue


@pytest.fixture
def index(tmp_path: Path) -> TranscriptIndex:
    index = TranscriptIndex(tmp_path / "transcripts.sqlite3")
    index.add(
        "border",
        "Border news",
        1000.0,
        [
            Cue(1.0, 3.0, "The border crossing opened again this morning."),
            Cue(70.0, 72.0, "Trucks are moving at the border."),
            Cue(90.0, 92.0, "Nothing else here."),
        ],
    )
    index.add("farm", "Farming", 2000.0, [Cue(5.0, 6.0, "Farmers talk about the weather.")])
    yield index
    index.close()


def test_finds_spaces_with_their_lines_and_times(index: TranscriptIndex) -> None:
    (result,) = index.search("border")
    assert result.space_id == "border"
    assert result.title == "Border news"
    assert [(h.start, h.text) for h in result.lines] == [
        (1.0, "The border crossing opened again this morning."),
        (70.0, "Trucks are moving at the border."),
    ]


def test_every_word_must_match_and_the_last_is_a_prefix(index: TranscriptIndex) -> None:
    assert [r.space_id for r in index.search("border trucks")] == ["border"]
    assert [r.space_id for r in index.search("farm")] == ["farm"]  # "farm" finds "Farmers"
    assert index.search("border weather") == []


def test_ranked_best_first(index: TranscriptIndex) -> None:
    index.add("more", "More border", 3000.0, [Cue(1, 2, "border border border, the border")])
    assert [r.space_id for r in index.search("border")] == ["more", "border"]


@pytest.mark.parametrize(
    "text", ['"border', 'border"', "border*", "NEAR(border)", "border AND", '"" OR ^x', "a:b"]
)
def test_search_syntax_is_text(index: TranscriptIndex, text: str) -> None:
    index.search(text)  # no sqlite3.OperationalError, whatever was typed


def test_nothing_to_search(index: TranscriptIndex) -> None:
    with pytest.raises(BadQuery):
        index.search('" * "')


def test_adding_again_replaces_and_remove_forgets(index: TranscriptIndex) -> None:
    index.add("border", "Border news", 1000.0, [Cue(1, 2, "Only the weather now")])
    assert [r.space_id for r in index.search("border")] == []
    assert {r.space_id for r in index.search("weather")} == {"border", "farm"}
    index.remove("farm")
    assert [r.space_id for r in index.search("weather")] == ["border"]
    assert not index.indexed("farm")
