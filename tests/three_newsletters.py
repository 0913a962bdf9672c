"""A site with three newsletters (daily with reader sections, weekly, breaking news
that is instant and not offered at sign-up), for the tests of subscriptions."""

from __future__ import annotations

import re
from pathlib import Path

NEWSLETTERS = """
[[newsletters]]
key = "daily"
title = "The Morning Briefing"
schedule = "0 7 * * *"
sections = ["Business", "Sport", "Culture"]
reader_sections = true

[[newsletters]]
key = "weekly"
title = "The Week"
schedule = "0 9 * * 6"

[[newsletters]]
key = "breaking"
title = "Breaking news"
schedule = "instant"
signup = false
"""


def with_newsletters(site: Path) -> Path:
    """Give the demo site at ``site`` the three newsletters instead of its one digest."""
    config = site / "config.toml"
    text = re.sub(r"(?m)^(subject|max_articles|digest) = .*\n", "", config.read_text(encoding="utf-8"))
    config.write_text(text + NEWSLETTERS, encoding="utf-8")
    return site
