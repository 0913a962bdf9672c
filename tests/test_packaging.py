"""The wheel carries the default theme from the single copy in templates/ and the
interface catalogs, and an install from it alone speaks Korean."""

import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.legacy_store import V3

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_templates_as_package_data(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("publisher-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in sorted(p.name for p in (ROOT / "templates").iterdir() if p.is_file()):
        assert f"publisher/templates/{template}" in names
    assert not any(n.startswith("templates/") for n in names)
    assert "publisher/cli/__init__.py" in names
    for tag in ("en", "ko"):
        assert f"publisher/locale/{tag}/LC_MESSAGES/messages.po" in names
    # Installed from the wheel alone (no source tree): the Korean catalog and the theme load.
    target = tmp_path / "installed"

    def installed(code: str) -> str:
        """What ``code`` prints, run with the installed wheel first on the path."""
        return subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        ).stdout

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import publisher.i18n as i, publisher.render as r; from datetime import UTC; "
        "l = i.Language.of('ko', UTC); "
        "print(i.PACKAGE_LOCALE.is_relative_to(r.PACKAGE_DIR), l.gettext('Latest news'), "
        "r.default_templates().parent == r.PACKAGE_DIR)"
    )
    out = installed(probe).split()
    assert out == ["True", "최신", "뉴스", "True"]
    # ... and a store written before Alembic upgrades with the revisions the wheel carries.
    names_revisions = [n for n in names if n.startswith("publisher/store/migrations/versions/")]
    assert any(n.endswith("0004_newsletters.py") for n in names_revisions)
    shutil.copy(V3 / "store.db", tmp_path / "old.db")
    probe = (
        "import publisher.store as s, publisher.store.migrations as m; "
        f"s.Store.open('sqlite:///{tmp_path / 'old.db'}').close(); "
        "print(m.HERE, m.head())"
    )
    here, head = installed(probe).split()
    assert Path(here).is_relative_to(target)
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (head,)
    conn.close()
