"""Memory of the commands that walk the subscriber list, each run as its own process
(the real `publish` command) on a SQLite store of 5,000 and of 50,000 subscribers:

- `publish subscribers import` of a CSV file of N rows (into an empty store),
- `publish subscribers export`, `list` and `list --newsletter digest` (to a file),
- `publish now`: collect 25 articles, make the issue (its N deliveries) and send it,
  into postfix's smtp-sink on loopback when installed, else into a Maildir;
- then `publish suppressions import` of the same file (every reader suppressed) and
  `publish suppressions export`.

    python bench/subscribers.py [--small 5000] [--large 50000] [--big] [--only NAME]

Prints a table: each command's peak RSS at both sizes and their ratio (goal of issue
#15: <= 1.1), and with ``--big`` a third column at 500,000 subscribers (goal: <= 150 MB;
it takes about ten minutes, most of it sending). Peak RSS is the ``ru_maxrss`` that
``os.wait4`` gives for the command's process (the largest of it and any process it
waited for); this script imports nothing but the standard library, so its own small
peak (printed as the floor) is all a child can inherit from it. Each command's output
is checked: every row exported and listed, every message sent.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIG = 500_000
ARTICLES = 25
SMTP_SINK = shutil.which("smtp-sink") or (
    "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
)

# name -> (arguments, check of its output: (stdout, rows) -> problem or "")
COMMANDS = {
    "subscribers import": (("subscribers", "import", "readers.csv"), "imported"),
    "subscribers export": (("subscribers", "export"), "export"),
    "subscribers list": (("subscribers", "list"), "list"),
    "subscribers list --newsletter digest": (("subscribers", "list", "--newsletter", "digest"), "list"),
    "publish now": (("now",), "sent"),
    "suppressions import": (("suppressions", "import", "readers.csv"), "imported"),  # after the send
    "suppressions export": (("suppressions", "export"), "export"),
}


def make_site(folder: Path, subscribers: int, sink_port: int | None) -> Path:
    """The demo config with 25 articles in a directory source, delivering to the sink
    (or a Maildir), and a CSV file of ``subscribers`` readers to import."""
    folder.mkdir(parents=True)
    seeds = folder / "seeds"
    seeds.mkdir()
    for i in range(ARTICLES):
        (seeds / f"{i:03}.md").write_text(
            f'+++\ntitle = "Story {i}: the city, its subway and the people who ride it"\n'
            f"published = 2025-05-{1 + i:02}T08:00:00+09:00\n"
            f'authors = ["Reporter {i}"]\ntags = ["News"]\nsummary = "Story {i} in brief."\n+++\n'
            f"Body {i}.\n",
            encoding="utf-8",
        )
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    if sink_port is not None:
        text = text.replace(
            'transport = "maildir"\nmaildir = "outbox"\n',
            'transport = "smtp"\nretry_delay = 0.1\n'
            f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {sink_port}\nsecurity = "none"\n',
        )
    config = folder / "config.toml"
    config.write_text(text, encoding="utf-8")
    with (folder / "readers.csv").open("w", encoding="utf-8") as out:
        out.write("email,name\n")
        for i in range(subscribers):
            out.write(f"reader{i:07}@example.com,Reader {i}\n")
    return config


def run(config: Path, args: tuple[str, ...]) -> tuple[float, float, Path]:
    """Peak RSS (MB) and seconds of ``publish args`` run as its own process, and the
    file holding its stdout."""
    out = config.parent / "out.txt"
    start = time.perf_counter()
    with out.open("wb") as sink, (config.parent / "err.txt").open("wb") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "publisher", "--config", str(config), *args],
            env={**os.environ, "PYTHONPATH": str(ROOT), "PUBLISHER_SECRET": "bench-secret"},
            stdout=sink,
            stderr=err,
            cwd=config.parent,
        )
        _, status, usage = os.wait4(child.pid, 0)
    took = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        tail = (config.parent / "err.txt").read_text(errors="replace")[-2000:]
        raise SystemExit(f"publish {' '.join(args)} failed: {tail}")
    return usage.ru_maxrss / 1024, took, out


def check(kind: str, out: Path, rows: int) -> str:
    """What is wrong with a command's output for ``rows`` subscribers ("" if nothing).
    Read a line at a time: a child inherits this process's peak, so it stays small."""
    with out.open("rb") as lines:
        count = sum(1 for _ in lines)
    with out.open("rb") as text:
        text.seek(max(0, out.stat().st_size - 2000))
        tail = text.read().decode(errors="replace")
    if kind == "imported" and not re.search(rf"(^|\n){rows} added,", tail):
        return f"import said {tail.strip()!r}"
    if kind == "export" and count != rows + 1:
        return f"export wrote {count} lines"
    if kind == "list" and count != rows:
        return f"list wrote {count} lines"
    if kind == "sent":
        found = re.search(r"(\d+) sent", tail)
        if found is None or int(found.group(1)) != rows:
            return f"publish now said {tail.strip()[-300:]!r}"
    return ""


def start_sink() -> tuple[subprocess.Popen[bytes] | None, int | None]:
    if SMTP_SINK is None:
        return None, None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = subprocess.Popen(
        [SMTP_SINK, "-u", "nobody", f"127.0.0.1:{port}", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return sink, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("smtp-sink did not start")


def measure(folder: Path, rows: int, port: int | None, only: list[str]) -> dict[str, tuple[float, float]]:
    """Every command on one site of ``rows`` subscribers, in order (import first)."""
    config = make_site(folder, rows, port)
    found = {}
    for name, (args, kind) in COMMANDS.items():
        if only and name not in only and name != "subscribers import":
            continue
        mb, took, out = run(config, args)
        problem = check(kind, out, rows)
        if problem:
            raise SystemExit(f"{name} at {rows:,}: {problem}")
        found[name] = (mb, took)
        print(f"  {name} at {rows:,}: {mb:.1f} MB, {took:.1f} s", file=sys.stderr, flush=True)
    shutil.rmtree(folder)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--large", type=int, default=50_000)
    parser.add_argument("--big", action="store_true", help=f"also {BIG:,} subscribers (about ten minutes)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="only this command")
    options = parser.parse_args()
    sizes = [options.small, options.large] + ([BIG] if options.big else [])
    sink, port = start_sink()
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-subscribers-") as tmp:
            results = {n: measure(Path(tmp) / str(n), n, port, options.only) for n in sizes}
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait()
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    into = "smtp-sink" if port is not None else "a Maildir (smtp-sink not installed)"
    print(f"peak RSS (MB) of each command as its own process; publish now sends into {into}")
    head = f"{'command':<38} {sizes[0]:>9,} {sizes[1]:>9,}   ratio  (goal <= 1.1)"
    if options.big:
        head += f" {BIG:>9,}  (goal <= 150 MB)"
    print(head + "   seconds")
    for name in results[sizes[0]]:
        small, large = results[sizes[0]][name][0], results[sizes[1]][name][0]
        ratio = large / small
        line = f"{name:<38} {small:>9.1f} {large:>9.1f} {ratio:>7.2f}  {'ok' if ratio <= 1.1 else 'OVER':<14}"
        if options.big:
            big = results[BIG][name][0]
            line += f" {big:>9.1f}  {'ok' if big <= 150 else 'OVER':<16}"
        seconds = " / ".join(f"{results[n][name][1]:.1f}" for n in sizes)
        print(f"{line} {seconds}")
    print(
        f"(this script's own peak, the floor a child may inherit: {floor:.1f} MB; whole run "
        f"{time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
