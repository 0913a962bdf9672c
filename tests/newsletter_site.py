"""The demo site with several newsletters: the config tables, subscribing through the
real ``publish subscribers add`` command, and reading what each reader received."""

from __future__ import annotations

import mailbox
import re
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from zoneinfo import ZoneInfo

from publisher import audience
from publisher import config as configuration
from publisher.store import Store

# daily: every article, readers may narrow it; money: Business only; weekend: Culture
# and Sports (one named by its slug), readers may narrow it.
NEWSLETTERS = """
[[newsletters]]
key = "daily"
title = "The Morning Briefing"
description = "Every story, every morning."
schedule = ""
sections = []
reader_sections = true
max_articles = 20
subject = "{{ newsletter.title }} — {{ date }}"

[[newsletters]]
key = "money"
title = "Money Matters"
description = "Business news."
schedule = ""
sections = ["Business"]
subject = "{{ newsletter.title }}: {{ date }}"

[[newsletters]]
key = "weekend"
title = "Weekend Culture"
description = "Culture and sport."
schedule = ""
sections = ["culture", "Sports"]
reader_sections = true
"""

BUSINESS = {
    "Chipmaker plans new packaging plant in Cheonan",
    "Exports rise for fourth month on semiconductor demand",
}
CULTURE = {
    "Lantern festival lights up Cheonggye Stream",
    "Korean drama tops global streaming chart for third week",
}
SPORTS = {"Rookie pitcher strikes out ten in first start"}
UNTAGGED = {
    "OpenAI to open office in Seoul",
    "Kospi rebounds as chipmakers lead gains",
    "Seoul extends late-night subway service on three lines",
    "Early heat advisory issued for Daegu and North Gyeongsang",
}
EVERY_TITLE = BUSINESS | CULTURE | SPORTS | UNTAGGED
LIST_IDS = {
    "daily": '"The Morning Briefing" <daily.127.0.0.1>',
    "money": '"Money Matters" <money.127.0.0.1>',
    "weekend": '"Weekend Culture" <weekend.127.0.0.1>',
}


def with_newsletters(site: Path, tables: str = NEWSLETTERS) -> None:
    """Add ``tables`` to the site's config.toml; what [digest] and [schedule] said of
    the single digest (subject, max_articles, its cron) goes: each newsletter says it."""
    cfg = site / "config.toml"
    text = re.sub(r"(?m)^(subject|max_articles|digest) = .*\n", "", cfg.read_text(encoding="utf-8"))
    cfg.write_text(text + tables, encoding="utf-8")


def subscribe(site: Path, email: str, *newsletters: str, sections: str = "") -> None:
    """An active reader of ``newsletters`` (narrowed to ``sections``, names joined by commas)."""
    config = configuration.load(site / "config.toml")
    with Store.of(config) as store:
        chosen = sections.split(",") if sections else None
        audience.add(store, email, config=config, newsletters=list(newsletters), sections=chosen)


def today() -> str:
    """The issue date of a run now, in the demo site's timezone."""
    return datetime.now(ZoneInfo("Asia/Seoul")).strftime("%Y-%m-%d")


def received(site: Path) -> list[EmailMessage]:
    box = site / "outbox"
    if not box.exists():
        return []
    parse = BytesParser(policy=policy.default).parsebytes
    return [parse(m.as_bytes()) for m in mailbox.Maildir(box, create=False)]


def mails_to(site: Path, email: str) -> list[EmailMessage]:
    return [m for m in received(site) if email in m["To"]]


def newsletter_of(msg: EmailMessage) -> str:
    """The newsletter key a mail came from, read from its List-Id."""
    return re.search(r"<([^.>]+)\.", msg["List-Id"]).group(1)


def html_of(msg: EmailMessage) -> str:
    return msg.get_body(("html",)).get_content()


def text_of(msg: EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


def titles_in(msg: EmailMessage, among: set[str] = EVERY_TITLE) -> set[str]:
    """Which of the demo's titles a mail's text part holds."""
    text = " ".join(text_of(msg).split())
    return {t for t in among if t in text}


def add_article(site: Path, name: str, title: str, tag: str, day: int = 28) -> None:
    (site / "seeds" / name).write_text(
        f'+++\ntitle = "{title}"\npublished = 2025-05-{day:02}T08:00:00+09:00\ntags = ["{tag}"]\n'
        f'summary = "About {title}."\n+++\nThe story of {title}.\n',
        encoding="utf-8",
    )
