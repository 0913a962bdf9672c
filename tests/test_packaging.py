"""The wheel carries the default theme from the single copy in templates/ and the
interface catalogs, and an install from it alone speaks Korean."""

import subprocess
import sys
import zipfile
from pathlib import Path

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
    out = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    ).stdout.split()
    assert out == ["True", "최신", "뉴스", "True"]
