"""The collector around a publish process's imports and its end (publisher.cli.collector):
what was imported is frozen, the collector runs again afterwards (or stays off when it
was off), and exit statuses are what the command said."""

from __future__ import annotations

import subprocess
import sys

from tests.sites import ROOT


def python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_cli_freezes_what_it_imported_and_collects_again_after() -> None:
    out = python(
        "import gc\n"
        "import publisher.cli\n"
        "from publisher.cli.app import COMMANDS, main\n"
        "import click\n"
        "frozen = gc.get_freeze_count()\n"
        "main.get_command(click.Context(main), 'now')\n"
        "print(gc.isenabled(), frozen > 10_000, gc.get_freeze_count() > frozen)"
    )
    assert out == "True True True"


def test_a_collector_switched_off_before_stays_off() -> None:
    assert python("import gc\ngc.disable()\nimport publisher.cli\nprint(gc.isenabled())") == "False"


def test_the_exit_status_is_the_commands(tmp_path) -> None:
    missing = tmp_path / "none.toml"
    done = subprocess.run(
        [sys.executable, "-m", "publisher", "--config", str(missing), "status"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.startswith("publish: "), done.stderr
    assert "Traceback" not in done.stderr
