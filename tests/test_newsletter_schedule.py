"""`publish run` with several newsletters, as a real daemon: one job per scheduled
newsletter (cron in site.timezone), "instant" ones after each collect but never more
often than min_interval, "" only by hand."""

from __future__ import annotations

import signal

import pytest

from tests.daemon import NEVER_SOON, configure
from tests.newsletter_site import add_article, mails_to, newsletter_of, subscribe, with_newsletters
from tests.waiting import wait_until

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


@pytest.mark.slow
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

    wait_until(lambda: mine() == ["daily", "weekend"], 20, "daily's and weekend's issues")
    assert "money: next run" not in daemon.log  # by hand only: no job

    # Something new for weekend within its min_interval: it waits; daily carries it now.
    add_article(site, "102_museum.md", "Museum reopens after renovation", "Culture")
    daemon.wait_for("daily 20", timeout=20)
    wait_until(lambda: mine().count("daily") == 2, 20, "daily's second issue")
    collects = daemon.log.count("collect: ")
    wait_until(lambda: daemon.log.count("collect: ") >= collects + 2, 20, "two more collects")
    assert mine().count("daily") == 2 and mine().count("weekend") == 1 and "money" not in mine()
    code, _ = daemon.stop(signal.SIGTERM)
    assert code == 0, daemon.log

    status = run_publish(site, "status").stdout
    assert "daily" in status and "* * * * * *" in status
    assert "weekend" in status and "instant" in status
