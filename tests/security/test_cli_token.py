"""`causerie token`: an account token, or with `--operator` the first operator's."""

from pathlib import Path

import pytest

from causerie.cli import main
from causerie.domain import SiteRole
from causerie.security.secrets import load_secrets
from causerie.security.tokens import ANY_SPACE, TokenSigner


@pytest.mark.parametrize(
    ("flags", "role"), [([], SiteRole.HOST), (["--operator"], SiteRole.OPERATOR)]
)
def test_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], role: SiteRole
) -> None:
    argv = ["token", "--data-dir", str(tmp_path), "--name", "Olga", "--user", "u-olga"]
    assert main([*argv, *flags]) == 0
    token = capsys.readouterr().out.strip()
    claims = TokenSigner(load_secrets(tmp_path, None)).verify(token, now=0)
    assert (claims.sub, claims.name, claims.aud) == ("u-olga", "Olga", ANY_SPACE)
    assert claims.site_role is role
