"""Bad configuration stops with one line naming the file, the key and the problem."""

from pathlib import Path

import pytest

from publisher import config
from publisher.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_config_loads_with_paths_beside_it():
    cfg = config.load(ROOT / "config.toml")
    assert cfg.site.timezone == "Asia/Seoul"
    assert cfg.output.dir == ROOT / "public"
    assert cfg.sources[0].path == ROOT / "seeds"
    assert cfg.store_url == f"sqlite:///{ROOT / 'publisher.db'}"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[site]\ntitel = 'x'\n", "site.titel", "unknown key"),
        ("[sitee]\n", "sitee", "unknown section"),
        ("[feeds]\nitems = 'many'\n", "feeds.items", "must be an integer"),
        ("[feeds]\nitems = 0\n", "feeds.items", "from 1 to 100000"),
        ("[site]\ntimezone = 'Mars/Olympus'\n", "site.timezone", "unknown timezone"),
        ("[site]\nbase_url = 'news.example.com'\n", "site.base_url", "absolute http(s) URL"),
        ("[delivery]\ntransport = 'pigeon'\n", "delivery.transport", "must be one of"),
        ("[delivery.smtp]\nprot = 25\n", "delivery.smtp.prot", "unknown key"),
        ("[[sources]]\ntype = 'directory'\n", "sources[0].path", "required"),
        ("[digest]\nskip_if_empty = 'yes'\n", "digest.skip_if_empty", "true or false"),
        # every number has a range
        ("[delivery.smtp]\nport = 70000\n", "delivery.smtp.port", "must be from 1 to 65535, not 70000"),
        ("[delivery.smtp]\nport = 0\n", "delivery.smtp.port", "must be from 1 to 65535"),
        ("[delivery.smtp]\ntimeout = 1e9\n", "delivery.smtp.timeout", "must be from 1 to 3600"),
        ("[delivery.smtp]\nrate = 1e-300\n", "delivery.smtp.rate", "(or 0: off)"),
        ("[delivery]\nretry_delay = -1\n", "delivery.retry_delay", "must be from 0 to 3600"),
        ("[store]\nlease = 1000000000000000000\n", "store.lease", "must be from 3 to 86400"),
        ("[store]\nlock_wait = 1e18\n", "store.lock_wait", "must be from 0 to 86400"),
        (
            "[[sources]]\ntype = 'directory'\npath = 'seeds'\nmax_article_bytes = 100000000000000000000\n",
            "sources[0].max_article_bytes",
            "must be from 1 to 1073741824",
        ),
        (
            "[[sources]]\ntype = 'directory'\npath = 'seeds'\ntimeout = 1e300\n",
            "sources[0].timeout",
            "must be from 0.1 to 600",
        ),
        ("[server]\nport = 65536\n", "server.port", "must be from 1 to 65535"),
    ],
)
def test_bad_values_name_file_key_and_problem(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: ")
    assert problem in message
    assert "\n" not in message


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[site\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        config.load(path)


def test_cli_exits_2_with_one_line_and_no_traceback(tmp_path, run_publish):
    write(tmp_path, "[site]\ntimezone = 'Nowhere/Land'\n")
    result = run_publish(tmp_path, "now", check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "site.timezone" in lines[0] and "Nowhere/Land" in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_config_file_exits_2(tmp_path, run_publish):
    result = run_publish(tmp_path, "now", check=False)
    assert result.returncode == 2
    assert "no such file" in result.stderr


def test_readme_reference_is_generated_from_the_settings_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert config.reference() in readme, (
        "README.md is stale: put the output of `python -m publisher.config` between its config-reference markers"
    )
