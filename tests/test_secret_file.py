"""The secret file: created once, mode 0600, rotatable."""

import stat

import pytest

from causerie.secret_file import SECRET_FILE, load_or_create_secrets, rotate_secret


def test_created_private_and_stable(tmp_path) -> None:
    first = load_or_create_secrets(tmp_path)
    mode = stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode)
    assert mode == 0o600
    assert len(first) == 1 and len(first[0]) == 32
    assert load_or_create_secrets(tmp_path) == first


def test_rotation_puts_a_new_secret_first(tmp_path) -> None:
    first = load_or_create_secrets(tmp_path)
    rotate_secret(tmp_path)
    after = load_or_create_secrets(tmp_path)
    assert after[1:] == first and after[0] != first[0]
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600


def test_damaged_file_is_reported(tmp_path) -> None:
    (tmp_path / SECRET_FILE).write_text("not hex\n")
    with pytest.raises(ValueError, match="damaged"):
        load_or_create_secrets(tmp_path)
