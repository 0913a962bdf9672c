"""The README's command table is made from the commands (publisher/cli/reference.py)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import click

import publisher.cli
from publisher.cli import main
from publisher.cli.app import COMMANDS
from publisher.cli.reference import END, START, reference, update

ROOT = Path(__file__).resolve().parent.parent


def test_readme_command_table_is_generated_from_the_cli():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"{START}\n{reference()}\n{END}" in readme, (
        "README.md is stale: run `python -m publisher.cli.reference README.md`"
    )


def test_every_command_argument_and_option_has_its_row():
    usages = [line.split("`")[1] for line in reference().splitlines() if line.startswith("| `publish ")]
    ctx = click.Context(main)

    def walk(group: click.Group, path: list[str]) -> int:
        found = 0
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            if isinstance(command, click.Group):
                found += walk(command, [*path, name])
                continue
            called = " ".join([*path, name])
            [usage] = [u for u in usages if u == called or u.startswith(called + " ")]
            for param in command.params:
                names = param.opts if isinstance(param, click.Option) else [param.human_readable_name]
                assert all(n.upper() in usage.upper() for n in names), (usage, names)
            found += 1
        return found

    assert walk(main, ["publish"]) == len(usages)


def test_update_rewrites_only_between_the_markers(tmp_path: Path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{START}\nold table\n{END}\n\nAfter.\n", encoding="utf-8")
    assert update(readme) is True
    assert readme.read_text(encoding="utf-8") == f"# Title\n\n{START}\n{reference()}\n{END}\n\nAfter.\n"
    assert update(readme) is False


def test_each_command_is_imported_from_the_module_that_adds_it():
    """``publish`` imports a command's module when the command runs (cli.app.COMMANDS)."""
    for module in pkgutil.iter_modules(publisher.cli.__path__):
        importlib.import_module(f"publisher.cli.{module.name}")
    added = {name: command.callback.__module__ for name, command in main.commands.items()}
    assert added == {name: f"publisher.cli.{module}" for name, module in COMMANDS.items()}
