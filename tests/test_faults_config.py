"""Hostile and careless configuration: every relative default beside config.toml,
every number in range, templates and cron checked at load, one line and exit 2."""

from __future__ import annotations

import dataclasses
import subprocess
import typing

import pytest

from publisher import config
from publisher.errors import ConfigError
from tests.sites import edit_config, publish, require_binary


def test_relative_defaults_land_beside_config_toml_whatever_the_cwd(tmp_path):
    """A site made by ``publish init`` sets neither output.dir nor delivery.maildir;
    run from another folder (a service manager without WorkingDirectory runs in /),
    public/, outbox/ and the store are still made beside config.toml."""
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    publish(site, "init", str(site), cwd=tmp_path)
    text = (site / "config.toml").read_text()
    assert "[output]" not in text and "maildir" not in text
    publish(site, "subscribers", "add", "reader@example.com", cwd=elsewhere)
    publish(site, "now", cwd=elsewhere)
    assert list(elsewhere.iterdir()) == []
    assert (site / "public" / "index.html").is_file()
    assert (site / "public" / "feed.xml").is_file() or list((site / "public").glob("*.xml"))
    assert list((site / "outbox" / "new").iterdir())
    assert (site / "publisher.db").is_file()


def test_every_default_path_of_the_settings_table_is_beside_config_toml(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("")
    loaded = config.load(cfg)
    assert loaded.output.dir == tmp_path / "public"
    assert loaded.delivery.maildir == tmp_path / "outbox"
    assert loaded.store_url == f"sqlite:///{tmp_path / 'publisher.db'}"


def _numeric_fields() -> list[tuple[str, dataclasses.Field]]:
    found = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], f"{prefix}.{config.toml_key(f)}")
            elif hints[f.name] in (int, float):
                found.append((f"{prefix}.{config.toml_key(f)}", f))

    for name, cls in config.SECTIONS.items():
        walk(cls, name)
    walk(config.SourceConfig, "sources")
    return found


def test_every_number_in_the_settings_table_has_a_range():
    fields = _numeric_fields()
    assert len(fields) > 15
    unbounded = [key for key, f in fields if "minimum" not in f.metadata or "maximum" not in f.metadata]
    assert unbounded == []


def _toml(key: str, value: str) -> str:
    section, _, name = key.rpartition(".")
    if section == "sources":
        return f'[[sources]]\ntype = "directory"\npath = "seeds"\n{name} = {value}\n'
    return f"[{section}]\n{name} = {value}\n"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_infinity_are_refused_for_every_number(tmp_path, value):
    path = tmp_path / "config.toml"
    for key, _ in _numeric_fields():
        path.write_text(_toml(key, value))
        with pytest.raises(ConfigError) as info:
            config.load(path)
        assert str(info.value).startswith(f"{path}: {_where(key)}: must be "), str(info.value)


def _where(key: str) -> str:
    return key.replace("sources.", "sources[0].")


def test_a_rate_of_zero_still_means_unlimited(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[delivery.smtp]\nrate = 0\n")
    assert config.load(path).delivery.smtp.rate == 0


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        ("{{ site.title }", "template syntax error"),
        ("{% if %}x", "template syntax error"),
        ("{{ sitee.title }}", "unknown name 'sitee'"),
        ("{{ date }} {{ os.system('x') }}", "unknown name 'os'"),
    ],
)
def test_the_subject_template_is_checked_at_load(tmp_path, subject, problem):
    path = tmp_path / "config.toml"
    path.write_text('[digest]\nsubject = """' + subject + '"""\n')
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(info.value).startswith(f"{path}: digest.subject: ")
    assert problem in str(info.value)


def test_the_subject_renders_in_a_sandbox(site, run_publish):
    """A subject reaching for Python internals stops the run as a configuration
    error naming the key, instead of running it."""
    edit_config(
        site,
        'subject = "{{ site.title }} — your digest for {{ date }}"',
        'subject = "{{ site.__class__.__init__.__globals__ }}"',
    )
    run_publish(site, "subscribers", "add", "reader@example.com")
    result = run_publish(site, "now", check=False)
    assert result.returncode == 2, result.stderr
    assert "digest.subject" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("cron", "problem"), [("* * *", "must have 5 fields"), ("0 25 * * *", "not a valid cron")]
)
def test_publish_now_checks_the_schedule_too(site, run_publish, cron, problem):
    edit_config(site, 'digest = "0 7 * * *"', f'digest = "{cron}"')
    result = run_publish(site, "now", check=False)
    assert result.returncode == 2
    assert "schedule.digest" in result.stderr and problem in result.stderr
    assert "Traceback" not in result.stderr


def test_deeply_nested_toml_is_one_line_and_exit_2(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    result = publish(tmp_path, "now", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == f"publish: {cfg}: invalid TOML: arrays or tables nested too deeply"


@pytest.mark.parametrize("kind", ["ec", "small", "text"])
def test_an_unusable_dkim_key_is_a_configuration_error(site, run_publish, tmp_path, kind):
    openssl = require_binary("openssl")
    key = tmp_path / "key.pem"
    if kind == "ec":
        subprocess.run([openssl, "ecparam", "-genkey", "-name", "prime256v1", "-out", str(key)], check=True)
    elif kind == "small":
        subprocess.run([openssl, "genrsa", "-out", str(key), "512"], check=True, capture_output=True)
    else:
        key.write_text("not a key\n")
    edit_config(
        site,
        'maildir = "outbox"\n',
        f'maildir = "outbox"\ndkim_selector = "s"\ndkim_domain = "example.com"\ndkim_key_file = "{key}"\n',
    )
    result = run_publish(site, "now", check=False)
    assert result.returncode == 2, result.stderr
    assert "delivery.dkim_key_file" in result.stderr and "Traceback" not in result.stderr
