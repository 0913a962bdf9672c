"""[[newsletters]] tables: every key checked with one line naming the file and the key;
without them, [digest] and [schedule] digest define the one newsletter ``digest``."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher import config
from publisher.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

DAILY = """
[[newsletters]]
key = "daily"
title = "The Morning Briefing"
description = "The day's top stories, every morning at seven."
schedule = "0 7 * * *"
sections = ["Business", "business", "North Korea", "정치"]
reader_sections = true
max_articles = 15
subject = "{{ newsletter.title }} — {{ date }}"
signup = true
min_interval = 60
approval = true
editors = ["Desk <desk@news.example.com>", "editor@news.example.com"]

[[newsletters]]
key = "breaking"
title = "Breaking news"
schedule = "instant"
signup = false
"""


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return config.load(path)


def test_a_site_without_newsletters_has_the_digest_as_before() -> None:
    cfg = config.load(ROOT / "config.toml")
    [digest] = cfg.newsletters
    assert digest.key == "digest" and cfg.newsletter("digest") is digest
    assert digest.title == cfg.site.title and digest.description == cfg.site.description
    assert digest.schedule == cfg.schedule.digest == "0 7 * * *"
    assert digest.subject == cfg.digest.subject and digest.max_articles == cfg.digest.max_articles
    assert (digest.sections, digest.reader_sections, digest.signup, digest.approval) == (
        [],
        False,
        True,
        False,
    )
    assert (digest.template, digest.min_interval, digest.editors) == ("digest", 0, [])


def test_newsletters_tables_are_read_with_sections_as_slugs(tmp_path: Path) -> None:
    cfg = load(tmp_path, DAILY)
    daily, breaking = cfg.newsletters
    assert daily.key == "daily" and daily.title == "The Morning Briefing"
    assert daily.sections == ["business", "north-korea", "정치"]  # one slug rule, each once
    # the names as written, for readers before any article has shown them
    assert daily.section_names == {"business": "Business", "north-korea": "North Korea", "정치": "정치"}
    assert "section_names" not in config.reference()  # derived, not a key
    assert (daily.reader_sections, daily.max_articles, daily.min_interval, daily.approval) == (
        True,
        15,
        60,
        True,
    )
    assert daily.editors == ["Desk <desk@news.example.com>", "editor@news.example.com"]
    assert breaking.schedule == "instant" and breaking.signup is False and breaking.sections == []
    assert breaking.subject == "{{ newsletter.title }} — {{ date }}" and breaking.template == "digest"
    assert cfg.newsletter("weekly") is None


def test_a_site_template_of_its_own_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    for suffix in (".html", ".txt", ".css"):
        (tmp_path / "templates" / f"briefing{suffix}").write_text("x", encoding="utf-8")
    cfg = load(tmp_path, DAILY.replace("signup = true\n", 'signup = true\ntemplate = "briefing"\n', 1))
    assert cfg.newsletters[0].template == "briefing"


MINIMAL = '[[newsletters]]\nkey = "daily"\ntitle = "Daily"\n'


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[[newsletters]]\ntitle = 'Daily'\n", "newsletters[0].key", "required"),
        ("[[newsletters]]\nkey = 'daily'\n", "newsletters[0].title", "required"),
        (
            "[[newsletters]]\nkey = 'daily news'\ntitle = 'D'\n",
            "newsletters[0].key",
            "letters, digits and hyphens",
        ),
        (
            "[[newsletters]]\nkey = '-daily'\ntitle = 'D'\n",
            "newsletters[0].key",
            "letters, digits and hyphens",
        ),
        ("[[newsletters]]\nkey = '조간'\ntitle = 'D'\n", "newsletters[0].key", "ASCII"),
        ("[[newsletters]]\nkey = 7\ntitle = 'D'\n", "newsletters[0].key", "must be a string"),
        (
            MINIMAL + MINIMAL.replace('"daily"', '"Daily"'),
            "newsletters[1].key",
            "already the key of newsletters[0]",
        ),
        (
            "[[newsletters]]\nkey = 'Collect'\ntitle = 'C'\n",
            "newsletters[0].key",
            "reserved (the name of the scheduler's collect job)",
        ),
        (MINIMAL + "colour = 'red'\n", "newsletters[0].colour", "unknown key"),
        (MINIMAL + "schedule = 'every morning'\n", "newsletters[0].schedule", "cron"),
        (MINIMAL + "schedule = 'Instant'\n", "newsletters[0].schedule", '"instant" or ""'),
        (MINIMAL + "sections = 'Business'\n", None, None),  # a string is one section
        (MINIMAL + "sections = [1]\n", "newsletters[0].sections", "array of strings"),
        (MINIMAL + "sections = ['  ']\n", "newsletters[0].sections", "empty"),
        (MINIMAL + "reader_sections = 'yes'\n", "newsletters[0].reader_sections", "true or false"),
        (MINIMAL + "max_articles = 0\n", "newsletters[0].max_articles", "from 1 to 1000"),
        (MINIMAL + "max_articles = 2.5\n", "newsletters[0].max_articles", "must be an integer"),
        (MINIMAL + "subject = '{{ newsletter.title'\n", "newsletters[0].subject", "template syntax error"),
        (MINIMAL + "subject = '{{ secret }}'\n", "newsletters[0].subject", "unknown name 'secret'"),
        (MINIMAL + "template = 'missing'\n", "newsletters[0].template", "no templates/missing.html"),
        (MINIMAL + "template = '../digest'\n", "newsletters[0].template", "file name"),
        (MINIMAL + "signup = 1\n", "newsletters[0].signup", "true or false"),
        (MINIMAL + "min_interval = -5\n", "newsletters[0].min_interval", "from 0 to 525600"),
        (MINIMAL + "approval = 'no'\n", "newsletters[0].approval", "true or false"),
        (MINIMAL + "editors = ['not an address']\n", "newsletters[0].editors", "not an address"),
        (MINIMAL + "editors = ['a@b.example', 'x@@y']\n", "newsletters[0].editors", "x@@y"),
        ("newsletters = []\n", "newsletters", "array of tables"),
        ("newsletters = 'daily'\n", "newsletters", "array of tables"),
        ("[digest]\nsubject = 'x'\n" + MINIMAL, "digest.subject", "in each [[newsletters]]"),
        ("[schedule]\ndigest = '0 8 * * *'\n" + MINIMAL, "schedule.digest", "in each [[newsletters]]"),
    ],
)
def test_bad_newsletter_values_name_file_key_and_problem(
    tmp_path: Path, text: str, key: str | None, problem: str | None
) -> None:
    if key is None:
        assert load(tmp_path, text).newsletters[0].sections == ["business"]
        return
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'config.toml'}: {key}: "), message
    assert problem in message and "\n" not in message


def test_site_wide_digest_keys_stay_beside_newsletters(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        '[digest]\nfrom = "News <news@example.com>"\nreply_to = "desk@example.com"\nlist_id = "news.example.com"\n'
        'postal_address = "1 Example St"\nskip_if_empty = false\n' + MINIMAL,
    )
    assert cfg.digest.from_ == "News <news@example.com>" and cfg.digest.list_id == "news.example.com"
    assert [n.key for n in cfg.newsletters] == ["daily"]


def test_the_cli_refuses_a_bad_newsletter_with_one_line(tmp_path: Path, run_publish) -> None:
    (tmp_path / "config.toml").write_text(MINIMAL + "max_articles = 'many'\n", encoding="utf-8")
    result = run_publish(tmp_path, "status", check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"publish: {tmp_path / 'config.toml'}: newsletters[0].max_articles: must be an integer, not str 'many'"
    ]
