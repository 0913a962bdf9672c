"""The wheel carries the default theme from the single copy in templates/."""

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
