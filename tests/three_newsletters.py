"""A site with three newsletters (daily with reader sections, weekly, breaking news
that is instant and not offered at sign-up), for the tests of subscriptions; OFFERED
is a like set as the web tests offer it (with descriptions; the instant one is "alerts")."""

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

OFFERED = """
[[newsletters]]
key = "daily"
title = "The Morning Briefing"
description = "The day's top stories, every morning at seven."
schedule = "0 7 * * *"
sections = ["Business", "Culture", "Sports"]
reader_sections = true
signup = true

[[newsletters]]
key = "weekly"
title = "The Week in Korea"
description = "Our editors' picks, on Saturdays."
schedule = "0 9 * * 6"
signup = true

[[newsletters]]
key = "alerts"
title = "Breaking News"
description = "Big stories, as they happen."
schedule = "instant"
signup = false
"""


def with_newsletters(site: Path, tables: str = NEWSLETTERS) -> Path:
    """Give the demo site at ``site`` these newsletters instead of its one digest (each
    has its own subject and size: [digest] keeps what they share)."""
    config = site / "config.toml"
    text = re.sub(r"(?m)^(subject|max_articles|digest) = .*\n", "", config.read_text(encoding="utf-8"))
    config.write_text(text + tables, encoding="utf-8")
    return site
