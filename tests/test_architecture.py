"""The codebase's shape, enforced by the suite: imports follow the layers (the
import-linter contracts in pyproject's [tool.importlinter]) and there is no dead code
(vulture, configured in [tool.vulture], with tests/vulture_whitelist.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{name} is not installed (pyproject's test extras have it: tests/install.sh)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's package, not an installed one
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)


def test_imports_follow_the_layers() -> None:
    result = _run(_tool("lint-imports"), "--no-cache", "--no-logo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_there_is_no_dead_code() -> None:
    result = _run(_tool("vulture"))
    assert result.returncode == 0, (
        "unused code: use it in the product, remove it, or name it in tests/vulture_whitelist.py "
        "with its user\n" + result.stdout + result.stderr
    )


def test_a_layer_violation_is_caught(tmp_path: Path) -> None:
    """The contract is not vacuous: the store importing the pipeline breaks it."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "publisher", copy / "publisher", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    meta = copy / "publisher" / "store" / "meta.py"
    meta.write_text(meta.read_text(encoding="utf-8") + "\nfrom publisher import pipeline  # noqa\n")
    result = subprocess.run(
        [_tool("lint-imports"), "--no-cache", "--no-logo"],
        cwd=copy,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(copy)},
        timeout=300,
    )
    assert result.returncode == 1
    assert "publisher.store.meta -> publisher.pipeline" in result.stdout
