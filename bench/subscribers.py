"""Memory of the commands that walk the subscriber list: `publish subscribers export` and
`publish subscribers list` (and `list --newsletter`), each run as its own process on a
SQLite store of 5,000 and of 50,000 subscribers (imported with `publish subscribers
import`), writing to a file.

    python bench/subscribers.py [--small 5000] [--large 50000]

Prints a table: each command's peak RSS (VmHWM of the command's process) at both sizes
and their ratio. Goal (issue #15): the ratio <= 1.1, the rows streamed in batches
(memory independent of the list's length); the output is checked to hold every row.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "subscribers export": (("subscribers", "export"), 1),  # (arguments, lines beyond one per row)
    "subscribers list": (("subscribers", "list"), 0),
    "subscribers list --newsletter digest": (("subscribers", "list", "--newsletter", "digest"), 0),
}


def make_site(folder: Path, subscribers: int) -> Path:
    """A copy of the demo config (SQLite store) with ``subscribers`` imported."""
    folder.mkdir(parents=True)
    config = folder / "config.toml"
    config.write_text((ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
    csv = folder / "readers.csv"
    with csv.open("w", encoding="utf-8") as out:
        out.write("email,name\n")
        for i in range(subscribers):
            out.write(f"reader{i:07}@example.com,Reader {i}\n")
    publish(config, "subscribers", "import", str(csv))
    return config


def publish(config: Path, *args: str, stdout: int | None = subprocess.DEVNULL) -> None:
    subprocess.run(
        [sys.executable, "-m", "publisher", "--config", str(config), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=stdout,
        check=True,
        cwd=config.parent,
    )


def peak(config: Path, args: tuple[str, ...], rows: int, extra_lines: int) -> tuple[float, float]:
    """Peak RSS (MB) and seconds of one command run as its own process (this file's
    ``--child``: the command in-process, then its own VmHWM, which exec resets)."""
    out, hwm = config.parent / "out.txt", config.parent / "hwm.txt"
    start = time.perf_counter()
    with out.open("wb") as sink:
        subprocess.run(
            [sys.executable, __file__, "--child", str(hwm), "--config", str(config), *args],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=sink,
            check=True,
            cwd=config.parent,
        )
    took = time.perf_counter() - start
    with out.open("rb") as written:
        lines = sum(1 for _ in written)
    if lines != rows + extra_lines:
        raise SystemExit(f"{' '.join(args)} wrote {lines} lines for {rows} subscribers")
    return int(hwm.read_text()) / 1024, took


def child(hwm: str, argv: list[str]) -> None:
    from publisher.cli import main

    try:
        main.main(argv, prog_name="publish", standalone_mode=False)
    finally:
        sys.stdout.flush()
        status = Path("/proc/self/status").read_text()
        kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        Path(hwm).write_text(kb)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--large", type=int, default=50_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-subscribers-") as tmp:
        sites = {n: make_site(Path(tmp) / str(n), n) for n in (options.small, options.large)}
        rows = []
        for name, (args, extra) in COMMANDS.items():
            (small, t_small), (large, t_large) = (peak(sites[n], args, n, extra) for n in sites)
            rows.append((name, small, large, large / small, t_small, t_large))
    print(f"{'command':<38} {options.small:>8,} {options.large:>8,}   ratio  (goal <= 1.1)   seconds")
    for name, small, large, ratio, t_small, t_large in rows:
        verdict = "ok" if ratio <= 1.1 else "OVER"
        print(
            f"{name:<38} {small:>6.1f}MB {large:>6.1f}MB {ratio:>7.2f}  {verdict:<14} "
            f"{t_small:.1f} / {t_large:.1f}"
        )


if __name__ == "__main__":
    main()
