"""When a run failed: one rule (``RunReport.failure``) for ``publish now``'s exit
status and for the outcome the scheduler records; nothing delivered is a failure;
"N stay queued" is what the ledger holds; every error class lives in errors.py."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import shutil
import socket
import time

import pytest

import publisher
from publisher import config as configuration
from publisher import errors, scheduler
from publisher.store import Store
from tests.faults import failure_line
from tests.mailserver import add_subscribers, smtp_site
from tests.sites import edit_config


def test_every_error_class_of_publisher_lives_in_errors_py():
    defined = {}
    for info in pkgutil.walk_packages(publisher.__path__, "publisher."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name:
                defined[f"{info.name}.{name}"] = value
    assert [name for name in defined if not name.startswith("publisher.errors.")] == []
    for name in ("SourceError", "ParseError", "OutputError", "StoreError", "ConfigError", "LockBusy"):
        assert issubclass(getattr(errors, name), errors.PublisherError), name
    assert errors.ConfigError.exit_code == 2 and errors.OutputError.exit_code == 1


def failing_run(site, run_publish, server, addresses, fault):
    """``publish now`` over one connection, no retries, to subscribers whose every
    delivery meets ``fault`` (tests/mailserver.py); its result and failure line."""
    server.handler.faults.update({a: fault for a in addresses})
    add_subscribers(smtp_site(site, server.port, retries=0, connections=1), addresses)
    result = run_publish(site, "now", check=False)
    return result, failure_line(result)


def test_now_exits_1_when_every_delivery_failed_permanently(site, run_publish, mail_server):
    addresses = [f"gone{i}@example.com" for i in range(5)]
    result, line = failing_run(site, run_publish, mail_server, addresses, "550-no-such-user")
    assert "delivered: 0 sent, 0 queued for retry, 5 failed" in result.stdout
    assert line.startswith("publish: no digest was delivered, 5 failed: ")


def test_stay_queued_counts_every_delivery_left_in_the_ledger(site, run_publish, mail_server):
    """An unwell server stops the run after 20 temporary failures in a row; every
    delivery not made stays queued, tried or not, and the line says how many."""
    addresses = [f"reader{i:02}@example.com" for i in range(50)]
    _, line = failing_run(site, run_publish, mail_server, addresses, "451-always")
    assert sum(mail_server.handler.tried.values()) < 50  # the run did stop early
    assert "no digest was delivered, 50 stay queued for the next run" in line
    store = Store.of(configuration.load(site / "config.toml"))
    try:
        assert store.ledger.delivery_counts() == {"queued": 50}
    finally:
        store.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("case", ["only an update and a failed source", "every source failed"])
def test_publish_now_and_the_scheduler_agree_on_a_failed_run(site, run_publish, tmp_path, case):
    """The same run, once by ``publish now`` and once as a scheduled job (on a copy
    of the site): exit status 1 exactly when the scheduler records ``failed``."""
    folder = site / "one"
    folder.mkdir()
    story = folder / "story.txt"
    story.write_text("A story\nPublished: 2025-05-26T09:00:00+09:00\n\nFirst version.\n", encoding="utf-8")
    edit_config(
        site,
        '[[sources]]\ntype = "directory"\npath = "seeds"\n',
        '[[sources]]\ntype = "directory"\npath = "one"\n\n'
        f'[[sources]]\ntype = "feed"\nname = "wire"\nurl = "http://127.0.0.1:{_closed_port()}/feed.xml"\n'
        "timeout = 1\n",
    )
    run_publish(site, "now", "--no-email")
    if case == "every source failed":
        shutil.rmtree(folder)
    else:
        story.write_text("A story\nPublished: 2025-05-26T09:00:00+09:00\n\nCorrected.\n", encoding="utf-8")
        os.utime(story, (time.time() + 5, time.time() + 5))
    twin = tmp_path / "twin"
    shutil.copytree(site, twin, symlinks=True)
    now = run_publish(site, "now", "--no-email", check=False)
    scheduler.collect_job(str(twin / "config.toml"))
    store = Store.of(configuration.load(twin / "config.toml"))
    try:
        [last] = store.runs.last()
    finally:
        store.close()
    if case == "every source failed":
        assert now.returncode == 1 and last.outcome == "failed"
        assert "every source failed" in failure_line(now) and "every source failed" in last.detail
    else:
        assert "1 updated" in now.stdout
        assert now.returncode == 0 and last.outcome == "ok", (now.stderr, last.detail)
