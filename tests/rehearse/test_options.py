"""`causerie rehearse` flags: bad input is a usage error (exit 2) before anything runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from causerie import cli
from causerie.rehearse.options import build_parser, check
from tests.harness.ports import free_port


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--target", "http://127.0.0.1:8080", "--listeners", "-5"], "-5 is not at least 1"),
        (["--target", "http://127.0.0.1:8080", "--listeners", "many"], "'many' is not a whole"),
        (["--target", "127.0.0.1:8080"], "is not an http:// or https:// URL"),
        (["--target", "ftp://example.org"], "is not an http:// or https:// URL"),
        (["--target", "http://127.0.0.1:99999"], "has a bad port"),
        (["--target", "http://x", "--ramp", "-1"], "is not a number of seconds >= 0"),
        (["--target", "http://x", "--ramp", "nan"], "is not a number of seconds >= 0"),
        (["--target", "http://x", "--space", "no/such"], "is not a space id"),
        (["--target", "http://x", "--max-errors", "2"], "is not between 0 and 1"),
        (["--master", "--worker"], "not allowed with argument"),
    ],
)
def test_bad_flags_are_usage_errors(words, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["rehearse", *words])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage: causerie rehearse" in err
    assert message in err
    assert "locust" not in sys.modules  # parsing never monkey-patches this process


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--listeners", "3"], "--target URL is required"),
        (["--target", "http://x", "--ramp", "20", "--duration", "10"], "--ramp 20 is longer"),
        (["--target", "http://x", "--ramp", "0", "--duration", "0"], "more than 0 seconds"),
    ],
)
def test_flags_checked_together(words, message, capsys):
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_:
        check(parser, parser.parse_args(words))
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_defaults():
    parser = build_parser()
    args = parser.parse_args(["--target", "http://127.0.0.1:8080/", "--ramp", "5"])
    check(parser, args)
    assert args.target == "http://127.0.0.1:8080"
    assert args.duration == 65.0
    assert args.listeners == 100 and not args.master and not args.worker
    worker = parser.parse_args(["--worker", "--master-host", "10.0.0.2"])
    check(parser, worker)  # a worker takes its target from the master


def test_unreachable_target_is_a_clear_error_in_the_real_process():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = subprocess.run(
        [sys.executable, "-m", "causerie.rehearse", "--target", url, "--listeners", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"causerie rehearse: cannot reach {url}/api/spaces" in done.stderr
    assert done.stdout == ""


def test_without_locust_the_rehearsal_says_how_to_install_it() -> None:
    """Locust is an optional extra: a node never needs it, the rehearsal asks for it."""
    hide_locust = (
        "import runpy, sys; sys.modules['locust'] = None; "
        "sys.argv = ['causerie.rehearse', '--target', 'http://127.0.0.1:9']; "
        "runpy.run_module('causerie.rehearse', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide_locust], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "pip install 'causerie[rehearse]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_node_does_not_import_locust() -> None:
    """Serving never imports Locust (it monkey-patches the standard library with gevent)."""
    probe = "import sys, causerie.cli, causerie.app; print('locust' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False"
