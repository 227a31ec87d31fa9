"""The captions model: found without any hub, refused clearly when missing or damaged, and a
node without a usable model still serves audio; search never fails on what people type."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from causerie.captions.model import ModelError, ResolvedModel, resolve_model, verify
from tests.conftest import account
from tests.harness.in_process import run_node
from tests.harness.polling import eventually


def test_the_default_model_comes_with_the_install() -> None:
    model = resolve_model("tiny.en")
    assert (model.directory / "model.bin").is_file()
    assert model.sha256 is not None
    verify(model)  # the pinned weights


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("", "empty"),
        ("/nonexistent/model", "does not exist"),
        ("no-such-model.en", "not installed on this machine"),
    ],
)
def test_a_missing_model_says_what_to_do(setting: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        resolve_model(setting)


def test_a_directory_without_a_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"has no model\.bin"):
        resolve_model(str(tmp_path))


def test_damaged_weights_are_recognised(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"not the weights")
    damaged = ResolvedModel("tiny.en", tmp_path, "0" * 64)
    with pytest.raises(ModelError, match="damaged"):
        verify(damaged)


def corrupt_model(directory: Path) -> Path:
    directory.mkdir()
    (directory / "config.json").write_text('{"not": "whisper"}')
    (directory / "model.bin").write_bytes(b"\x00garbage" * 1000)
    return directory


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["missing", "corrupt"])
async def test_a_node_without_a_usable_model_serves_audio_and_says_why(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    model = tmp_path / "model"
    if kind == "corrupt":
        corrupt_model(model)
    caplog.set_level(logging.ERROR, logger="causerie.captions")
    async with (
        run_node(tmp_path / "data", captions_model=str(model), captions_max=1) as node,
        httpx.AsyncClient(base_url=node.url, timeout=30) as http,
    ):
        captions = node.app.services.captions
        assert captions is not None
        await eventually(lambda: captions.problem is not None, 120, "the model refused")
        expected = "does not exist" if kind == "missing" else "could not be loaded"
        assert expected in captions.problem
        assert any(expected in r.getMessage() for r in caplog.records), caplog.text
        host = account(node.data_dir)
        space = (await http.post("/api/spaces", json={"title": "T"}, headers=host)).json()
        await http.post(f"/api/spaces/{space['id']}/start", headers=host)
        details = (await http.get(f"/api/spaces/{space['id']}")).json()
        assert details["captions"] is True
        assert details["captions_state"] == "unavailable"
        assert expected in details["captions_problem"]
        # The audio is served as always.
        await eventually(
            lambda: node.app.services.broadcasts.get(space["id"]).packager.last_part() is not None,
            10,
            "a part",
        )
        playlist = await http.get(f"/hls/{space['id']}/index.m3u8")
        assert playlist.status_code == 200 and "#EXT-X-PART:" in playlist.text
        switched = await http.put(
            f"/api/spaces/{space['id']}/captions", json={"enabled": False}, headers=host
        )
        assert switched.status_code == 200 and switched.json()["captions"] is False
        assert captions.workers == {}


BAD_QUERIES = [
    "",
    "   ",
    "x" * 10_000,
    "word " * 2000,
    '"',
    '"border',
    'border"',
    '""',
    "*",
    "border*",
    "* border",
    "NEAR",
    "NEAR(border crossing)",
    "border NEAR/2 crossing",
    "AND OR NOT",
    "border AND",
    "(border",
    "text:border",
    "-border",
    "^border",
    "border\x00crossing",
    "\ud7ff\u0301",
    "😀",
]


async def test_search_never_fails_on_what_people_type(tmp_path: Path) -> None:
    async with (
        run_node(tmp_path / "data") as node,
        httpx.AsyncClient(base_url=node.url, timeout=30) as http,
    ):
        for query in BAD_QUERIES:
            answer = await http.get("/api/search", params={"q": query})
            assert answer.status_code in (200, 400), (query[:40], answer.status_code, answer.text)
            body = answer.json()
            if answer.status_code == 400:
                assert body["error"] and body["message"], body
            else:
                assert body["results"] == []
        missing = await http.get("/api/search")
        assert missing.status_code == 400 and "word" in missing.json()["message"]
