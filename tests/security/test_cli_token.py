"""`causerie token`: an account token, or with `--operator` the first operator's; `causerie
invite` and `causerie revoke`."""

import asyncio
from pathlib import Path

import pytest

from causerie.cli import main
from causerie.domain import SiteRole
from causerie.domain.accounts import invite_id
from causerie.node.factory import accounts_store
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


def test_invite_and_revoke_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`causerie invite` prints a link whose invite the node knows; `causerie revoke` refuses
    an account on the node (both write where the node keeps accounts)."""
    argv = ["--data-dir", str(tmp_path)]
    assert main(["invite", *argv, "--note", "for Ada", "--url", "https://talks.example/"]) == 0
    link = capsys.readouterr().out.strip()
    prefix = "https://talks.example/invite/"
    assert link.startswith(prefix)

    async def look() -> tuple[list, bool]:
        accounts = accounts_store(tmp_path, None)
        try:
            invite = await accounts.get_invite(invite_id(link[len(prefix) :]))
            return [invite.note, invite.role.value], await accounts.is_revoked("u-ada")
        finally:
            await accounts.close()

    assert asyncio.run(look()) == (["for Ada", "host"], False)
    assert main(["revoke", "u-ada", *argv]) == 0
    assert asyncio.run(look())[1] is True
    assert main(["revoke", "not an id", *argv]) == 2
    assert main(["invite", *argv, "--hours", "0"]) == 2
    assert "at most" in capsys.readouterr().err
