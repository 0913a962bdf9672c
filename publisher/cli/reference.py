"""The README's command table, made from the commands themselves (their options,
arguments and help), so it cannot drift from what ``publish`` accepts.

``python -m publisher.cli.reference`` prints it; ``python -m publisher.cli.reference
README.md`` puts it between the README's command-reference markers."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from publisher.cli import main

START, END = "<!-- command-reference:start -->", "<!-- command-reference:end -->"


def reference(group: click.Group = main) -> str:
    """``publish``'s global options, then one row per command: its usage and what it does."""
    ctx = click.Context(group, info_name="publish")
    lines = [f"`publish {_usage(group.params)} COMMAND` (`python -m publisher` works too):", ""]
    for option in group.params:
        if isinstance(option, click.Option) and not option.hidden:
            value = "" if option.is_flag else " " + _value(option)
            lines.append(f"- `{_names(option)}{value}`: {option.help}")
    lines += ["", "| command | what it does |", "| --- | --- |"]
    for path, command in _commands(ctx, group, ["publish"]):
        usage = " ".join([*path, _usage(command.params)]).strip()
        lines.append(f"| `{_cell(usage)}` | {_cell(_about(command))} |")
    return "\n".join(lines)


def _commands(
    ctx: click.Context, group: click.Group, path: list[str]
) -> list[tuple[list[str], click.Command]]:
    found: list[tuple[list[str], click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        if isinstance(command, click.Group):
            found += _commands(ctx, command, [*path, name])
        else:
            found.append(([*path, name], command))
    return found


def _usage(params: list[click.Parameter]) -> str:
    """``ARG [OPTIONAL] [--flag] [--option VALUE]``, in the order the command declares them."""
    shown = []
    for param in params:
        if isinstance(param, click.Argument):
            name = (param.metavar or param.name or "").upper()
            shown.append(name if param.required else f"[{name}]")
        elif isinstance(param, click.Option) and not param.hidden:
            names = "/".join(param.opts + param.secondary_opts) if param.secondary_opts else _names(param)
            if not param.is_flag:
                names += " " + _value(param)
            shown.append(names if param.required else f"[{names}]")
    return " ".join(shown)


def _names(option: click.Option) -> str:
    """``-v/--verbose``: the short and the long name."""
    return "/".join(sorted(option.opts, key=len))


def _value(option: click.Option) -> str:
    if option.metavar:
        return option.metavar
    if isinstance(option.type, click.Choice):
        return "|".join(str(c) for c in option.type.choices)
    return (option.name or "value").upper()


def _about(command: click.Command) -> str:
    """The help's first paragraph, on one line."""
    first = (command.help or command.short_help or "").split("\n\n")[0]
    return " ".join(first.split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def update(readme: Path) -> bool:
    """Put the table between the README's markers; True if the file changed."""
    text = readme.read_text(encoding="utf-8")
    before, _, rest = text.partition(START)
    _, found, after = rest.partition(END)
    if not found:
        raise SystemExit(f"{readme}: no {START} ... {END} markers")
    new = f"{before}{START}\n{reference()}\n{END}{after}"
    if new == text:
        return False
    readme.write_text(new, encoding="utf-8")
    return True


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print("updated" if update(Path(sys.argv[1])) else "up to date")
    else:
        print(reference())
