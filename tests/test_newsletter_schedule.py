"""`publish run` with several newsletters, as a real daemon: one job per scheduled
newsletter (cron in site.timezone), "instant" ones after each collect but never more
often than min_interval, "" only by hand."""

from __future__ import annotations

import signal
import time

from tests.daemon import NEVER_SOON, configure
from tests.newsletter_site import add_article, mails_to, newsletter_of, subscribe, with_newsletters

TABLES = """
[[newsletters]]
key = "daily"
title = "The Morning Briefing"
schedule = "* * * * * *"

[[newsletters]]
key = "money"
title = "Money Matters"
schedule = ""
sections = ["Business"]

[[newsletters]]
key = "weekend"
title = "Weekend Culture"
schedule = "instant"
sections = ["Culture", "Sports"]
min_interval = 60
"""


def test_each_newsletter_keeps_its_own_schedule(site, run_publish, daemons):
    configure(site, digest=NEVER_SOON, collect='"* * * * * *"')
    with_newsletters(site, TABLES)
    subscribe(site, "reader@example.com", "daily", "money", "weekend")
    daemon = daemons(site)
    daemon.wait_for("daily: next run")
    daemon.wait_for("daily 20")  # daily's job made its issue
    daemon.wait_for("weekend 20")  # the instant one went out after a collect

    def mine() -> list[str]:
        return sorted(newsletter_of(m) for m in mails_to(site, "reader@example.com"))

    deadline = time.monotonic() + 20
    while mine() != ["daily", "weekend"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert mine() == ["daily", "weekend"]
    assert "money: next run" not in daemon.log  # by hand only: no job

    # Something new for weekend within its min_interval: it waits; daily carries it now.
    add_article(site, "102_museum.md", "Museum reopens after renovation", "Culture")
    daemon.wait_for("daily 20", timeout=20)
    deadline = time.monotonic() + 20
    while mine().count("daily") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # a few more collects
    assert mine().count("daily") == 2 and mine().count("weekend") == 1 and "money" not in mine()
    code, _ = daemon.stop(signal.SIGTERM)
    assert code == 0, daemon.log

    status = run_publish(site, "status").stdout
    assert "daily" in status and "* * * * * *" in status
    assert "weekend" in status and "instant" in status
