"""Real feed readers driven by tests: newsboat, run as its own process on a home of its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def newsboat(binary: str, home: Path, urls: list[str], *actions: str) -> list[str]:
    (home / "urls").write_text("\n".join(urls) + "\n", encoding="utf-8")
    (home / "config").write_text("", encoding="utf-8")
    outputs = []
    for action in actions:
        result = subprocess.run(
            [binary, "-u", str(home / "urls"), "-c", str(home / "cache.db"), "-C", str(home / "config")]
            + ["-x", action],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home), "XDG_DATA_HOME": str(home)},
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.strip())
    return outputs
