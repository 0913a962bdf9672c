"""``publish init``: a new site that works at once, in the site's own language."""

from __future__ import annotations

import mailbox
import re
import tomllib
from email import policy
from email.parser import BytesParser
from pathlib import Path

from lxml import html as lxml_html

from tests.sites import publish


def hangul(text: str) -> bool:
    return re.search("[가-힣]", text) is not None


def test_a_korean_site_from_init_speaks_korean_in_kst(tmp_path: Path) -> None:
    site = tmp_path / "신문"
    publish(site, "init", str(site), "--language", "ko", "--timezone", "Asia/Seoul", cwd=tmp_path)
    cfg = tomllib.loads((site / "config.toml").read_text("utf-8"))
    assert cfg["site"]["language"] == "ko" and cfg["site"]["timezone"] == "Asia/Seoul"
    assert hangul(cfg["site"]["title"]) and hangul(cfg["site"]["description"])
    article = (site / "articles" / "welcome.md").read_text("utf-8")
    assert hangul(article) and "Welcome" not in article
    publish(site, "subscribers", "add", "reader@example.com")
    out = publish(site, "now").stdout
    assert "1 sent" in out
    index = lxml_html.fromstring((site / "public" / "index.html").read_bytes())
    assert index.get("lang") == "ko"
    [page] = (site / "public" / "articles").glob("*.html")
    assert hangul(page.name)  # the slug keeps the Hangul title
    box = mailbox.Maildir(site / "outbox", create=False)
    [raw] = [box.get_bytes(k) for k in box.keys()]
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert hangul(str(msg["Subject"])) and hangul(msg.get_body(("plain",)).get_content())


def test_an_english_site_from_init_is_as_before(tmp_path: Path) -> None:
    site = tmp_path / "site"
    publish(site, "init", str(site), "--title", "The Gazette", cwd=tmp_path)
    cfg = tomllib.loads((site / "config.toml").read_text("utf-8"))
    assert cfg["site"] == {
        "title": "The Gazette",
        "description": "News from The Gazette",
        "base_url": "http://127.0.0.1:8000/",
        "language": "en",
        "timezone": "UTC",
    }
    assert "Welcome to your new publication" in (site / "articles" / "welcome.md").read_text("utf-8")


def test_a_bad_language_or_timezone_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for option, value, word in (
        ("--language", "xx-nope", "language"),
        ("--timezone", "Mars/Olympus", "timezone"),
    ):
        result = publish(site, "init", str(site), option, value, check=False, cwd=tmp_path)
        assert result.returncode == 2, result
        [line] = result.stderr.strip().splitlines()
        assert option in line and value in line and word in line, line
        assert not site.exists()
