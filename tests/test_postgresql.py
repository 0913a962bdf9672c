"""The store on a real PostgreSQL server (a throwaway cluster, see tests/pg.py):
`publish now`, the lock, `publish status`, `publish run` and `--dry-run`, as real
processes against the demo site."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec

import feedparser
import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from publisher.store import Store
from publisher.store.schema import subscribe_requests
from tests import webserver
from tests.pg import PG_BIN, Server, cluster, require_postgresql, use_store
from tests.sites import ROOT, correct_the_seed, edit_config, publish, recipients


def test_publish_now_on_postgresql(site, run_publish, pg_url):
    """(A second run, an edited article, a busy lock, two runs at once and `publish
    run` are tested on PostgreSQL too: the ``any_store`` tests of test_publish_now,
    test_lock and test_scheduler.)"""
    use_store(site, pg_url)
    run_publish(site, "subscribers", "add", "reader@example.com", "--name", "Demo Reader")
    report = json.loads(run_publish(site, "now", "--json").stdout)
    assert report["collect"]["new"] == 9 and report["delivery"]["sent"] == 1
    assert not (site / "publisher.db").exists()  # the store really is the server
    tables = set(inspect(create_engine(pg_url)).get_table_names())
    assert {"articles", "digests", "deliveries", "leases"} <= tables
    feed = feedparser.parse((site / "public" / "rss.xml").read_bytes())
    assert not feed.bozo and len(feed.entries) == 9
    assert recipients(site) == ["Demo Reader <reader@example.com>"]

    status = run_publish(site, "status").stdout
    assert "source seeds: 9 articles seen" in status
    assert "lock: " not in status or "held by" not in status


def _snapshot(url: str) -> dict[str, object]:
    """Every row of every table, every sequence's position and every schema of the database."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            rows = {t: sorted(map(repr, conn.exec_driver_sql(f'SELECT * FROM "{t}"'))) for t in tables}
            sequences = conn.exec_driver_sql("SELECT sequencename, last_value FROM pg_sequences").all()
            schemas = conn.exec_driver_sql("SELECT nspname FROM pg_namespace").scalars().all()
        return {"rows": rows, "sequences": sorted(sequences), "schemas": sorted(schemas)}
    finally:
        engine.dispose()


@pytest.mark.slow
def test_dry_run_on_postgresql_changes_nothing(site, run_publish, pg_url):
    use_store(site, pg_url)
    run_publish(site, "subscribers", "add", "reader@example.com")
    run_publish(site, "now", "--no-email")  # articles, deliveries and sequences to copy
    correct_the_seed(site)
    run_publish(site, "subscribers", "add", "second@example.com")
    before = _snapshot(pg_url)
    report = json.loads(run_publish(site, "now", "--dry-run", "--json").stdout)
    assert report["collect"]["updated"] == 1 and report["digest"], report
    assert _snapshot(pg_url) == before  # no row, sequence or scratch schema left behind
    assert not (site / "outbox").exists()
    report = json.loads(run_publish(site, "now", "--json").stdout)
    assert report["collect"]["updated"] == 1 and report["delivery"]["sent"] == 2, report


def test_dry_run_without_the_right_to_make_a_schema_is_one_line(site, run_publish, postgresql):
    url = postgresql.createdb()
    use_store(site, url)
    run_publish(site, "collect")
    db = url.rsplit("/", 1)[1]
    role = f"reader_of_{db}"  # may read every table, may not create a schema
    postgresql.tool("createuser", role)
    postgresql.tool("psql", "-d", db, "-c", f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    edit_config(site, url, url.replace("//postgres@", f"//{role}:s3cret@"))
    before = _snapshot(url)
    line = _one_line(run_publish(site, "now", "--dry-run", check=False))
    assert f"--dry-run cannot make a scratch schema in the store postgresql+psycopg://{role}:***@" in line
    assert "grant its user CREATE on the database" in line and "s3cret" not in line
    assert _snapshot(url) == before


def _one_line(result) -> str:
    """The one line a store that cannot be used leaves on stderr (exit 2, no traceback)."""
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_an_unreachable_server_is_a_clear_error_that_hides_the_password(site, run_publish):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    use_store(site, f"postgresql+psycopg://publisher:s3cret@127.0.0.1:{port}/news?connect_timeout=2")
    result = run_publish(site, "status", check=False)
    line = _one_line(result)
    assert f"cannot open the store postgresql+psycopg://publisher:***@127.0.0.1:{port}/news" in line
    assert f"no PostgreSQL server answers at 127.0.0.1:{port}" in line
    assert "s3cret" not in result.stdout + result.stderr


def test_a_database_that_does_not_exist_is_one_line_with_the_fix(site, run_publish, postgresql):
    use_store(site, f"postgres://postgres:s3cret@127.0.0.1:{postgresql.port}/nosuchnews")
    line = _one_line(run_publish(site, "now", "--no-email", check=False))
    assert f"postgres://postgres:***@127.0.0.1:{postgresql.port}/nosuchnews" in line, line
    assert "the database nosuchnews does not exist" in line, line
    assert f"createdb -h 127.0.0.1 -p {postgresql.port} -U postgres nosuchnews" in line, line
    assert "s3cret" not in line
    assert not (site / "public").exists()


def test_an_unknown_driver_is_a_clear_error(site, run_publish):
    use_store(site, "postgresql+nosuchdriver://publisher@127.0.0.1/news")
    line = _one_line(run_publish(site, "status", check=False))
    assert "cannot open the store postgresql+nosuchdriver://" in line


def test_a_driver_that_is_not_installed_names_the_install_command(site, run_publish):
    if find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed here")
    use_store(site, "postgresql+psycopg2://publisher:s3cret@127.0.0.1/news")
    line = _one_line(run_publish(site, "status", check=False))
    assert "postgresql+psycopg2://publisher:***@127.0.0.1/news" in line
    assert "the driver psycopg2 is not installed: pip install psycopg2-binary" in line


HIDE_DRIVERS = """
import sys
from importlib.machinery import PathFinder


class _Hidden(PathFinder):  # psycopg and psycopg2 are not installed, as far as Python can tell
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.split(".")[0] in ("psycopg", "psycopg2") else PathFinder.find_spec(name, path, target)


sys.meta_path[:] = [_Hidden if f is PathFinder else f for f in sys.meta_path]
"""


@pytest.mark.parametrize("command", [("status",), ("now", "--dry-run")])
def test_a_bare_url_without_any_driver_names_the_install_command(site, run_publish, tmp_path, command):
    hiding = tmp_path / "no-drivers"
    hiding.mkdir()
    (hiding / "sitecustomize.py").write_text(HIDE_DRIVERS, encoding="utf-8")
    use_store(site, "postgres://publisher:s3cret@127.0.0.1/news")
    result = run_publish(site, *command, check=False, env={"PYTHONPATH": f"{hiding}{os.pathsep}{ROOT}"})
    assert _one_line(result) == (
        "publish: cannot open the store postgres://publisher:***@127.0.0.1/news: "
        'no PostgreSQL driver is installed: pip install "psycopg[binary]"'
    )


def _articles_in(url: str) -> int:
    with Store.open(url) as store:
        return sum(n for n, _ in store.articles.per_source().values())


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_bare_postgresql_urls_use_the_installed_driver(site, run_publish, pg_url, scheme):
    use_store(site, pg_url.replace("postgresql+psycopg://", f"{scheme}://"))
    run_publish(site, "collect")
    assert not (site / "publisher.db").exists()
    assert _articles_in(pg_url) == 9


def test_the_store_url_from_an_environment_variable(site, run_publish, pg_url):
    edit_config(site, "[store]\n", '[store]\nurl_env = "NEWSROOM_DATABASE_URL"\n')
    run_publish(site, "collect", env={"NEWSROOM_DATABASE_URL": pg_url})
    assert not (site / "publisher.db").exists()  # the variable won over store.url
    assert _articles_in(pg_url) == 9
    run_publish(site, "collect", env={"NEWSROOM_DATABASE_URL": ""})  # empty: store.url
    assert (site / "publisher.db").exists()


def test_a_store_url_variable_that_is_not_set_is_one_line_not_a_new_empty_store(site, run_publish):
    """With store.url_env and no store.url, a missing variable (a cron job without the
    operator's environment) must not quietly start a new, empty SQLite site: no readers,
    a new signing secret that breaks every unsubscribe link already mailed."""
    edit_config(site, 'url = "sqlite:///publisher.db"\n', 'url_env = "NEWSROOM_DATABASE_URL"\n')
    assert "NEWSROOM_DATABASE_URL" not in os.environ
    for env in ({}, {"NEWSROOM_DATABASE_URL": ""}):
        line = _one_line(run_publish(site, "now", check=False, env=env))
        assert line == (
            f"publish: {site / 'config.toml'}: store.url_env: the environment variable NEWSROOM_DATABASE_URL "
            "is not set: set it to the store's URL, or give store.url too (used when it is not set)"
        ), line
    assert not (site / "publisher.db").exists() and not (site / "public").exists()


def test_the_request_limit_holds_under_concurrent_requests(pg_url):
    store = Store.open(pg_url)
    now, window = datetime.now(UTC), timedelta(hours=1)
    start = threading.Barrier(10)

    def request(_: int) -> bool:
        start.wait()
        return store.subscribers.allow_request("stampede", now, window, 3)

    try:
        for _ in range(5):  # a race shows within a few rounds
            with ThreadPoolExecutor(max_workers=10) as pool:
                allowed = list(pool.map(request, range(10)))
            assert allowed.count(True) == 3
            with store.engine.begin() as conn:
                conn.execute(subscribe_requests.delete())
    finally:
        store.close()


def test_serve_subscribe_confirm_and_unsubscribe_on_postgresql(tmp_path, pg_url):
    port = webserver.free_port()
    site = webserver.make_site(tmp_path / "site", port)
    use_store(site, pg_url)
    env = {"PUBLISHER_SECRET": webserver.SECRET}
    publish(site, "now", "--no-email", env=env)
    server = webserver.Server(site, port)
    try:
        address = "reader@example.org"
        assert server.client.post("/subscribe", data={"email": address}).status_code == 200
        [mail] = webserver.wait_for_mails(site, address, 1)
        confirm = webserver.link_in(mail, "confirm")
        done = server.client.post(confirm, headers={"sec-fetch-site": "same-origin"})
        assert done.status_code == 200 and "You are subscribed" in done.text
        store = Store.open(pg_url)
        try:
            assert store.subscribers.get(address).status == "active"
            publish(site, "now", env=env)
            [digest] = [m for m in webserver.mails_to(site, address) if m["List-Unsubscribe"]]
            unsubscribe = digest["List-Unsubscribe"].split(",")[0].strip().strip("<>")
            one_click = server.client.post(
                unsubscribe,
                content=b"List-Unsubscribe=One-Click",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert one_click.status_code == 200 and "You are unsubscribed" in one_click.text
            assert store.subscribers.get(address).status == "unsubscribed"
        finally:
            store.close()
    finally:
        server.stop()


def test_long_source_names_and_article_paths_are_stored(site, run_publish, pg_url):
    """A source's name (its folder, feed URL or given name) and an article's id (name
    plus path or entry id) have no length limit on SQLite; nor on a server."""
    use_store(site, pg_url)
    folder = "archive-" + "x" * 240  # a 248-character folder name is the source's name
    deep = site / folder / ("y" * 200) / ("z" * 200)
    deep.mkdir(parents=True)
    (deep / "story.md").write_text(
        '+++\ntitle = "A story filed deep"\npublished = 2025-06-01T09:00:00+09:00\n+++\nBody.\n',
        encoding="utf-8",
    )
    edit_config(
        site, 'path = "seeds"\n', f'path = "seeds"\n\n[[sources]]\ntype = "directory"\npath = "{folder}"\n'
    )
    report = json.loads(run_publish(site, "now", "--json").stdout)
    assert report["collect"]["new"] == 10, report
    again = json.loads(run_publish(site, "now", "--json").stdout)
    assert again["collect"]["unchanged"] == 10 and again["collect"]["new"] == 0
    assert f"source {folder}: 1 article seen" in run_publish(site, "status").stdout


@pytest.fixture(scope="module")
def small_server() -> Iterator[Server]:
    """A cluster of its own, restarted with max_connections = 12: a server without
    room for every sender a run would start."""
    with cluster(require_postgresql()) as server:
        server.tool("psql", "-c", "ALTER SYSTEM SET max_connections = 12")
        data = server.sockets / "data"  # tests/pg.py: the cluster's folder holds its data and sockets
        log = str(server.sockets / "server.log")
        restart = [
            *server.run_as,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            log,
            "-m",
            "fast",
            "-w",
            "restart",
        ]
        subprocess.run(restart, check=True, capture_output=True, timeout=60)
        yield server


@contextmanager
def held_connections(url: str, count: int) -> Iterator[None]:
    """``count`` idle sessions on the server at ``url`` for as long as the block runs."""
    engine = create_engine(url, poolclass=NullPool)
    held = [engine.connect() for _ in range(count)]
    try:
        yield
    finally:
        for conn in held:
            conn.close()
        engine.dispose()


def test_a_server_without_room_for_every_sender_is_said_before_sending(small_server):
    """max_connections 12, superuser (none reserved): 8 held and the check's own leave 3,
    room for one sender process of the 4 wanted; 11 held leave none: one line, nothing sent."""
    from publisher.errors import StoreError
    from publisher.store import servers

    url = small_server.createdb()
    engine = create_engine(url, poolclass=NullPool)
    try:
        assert servers.senders_that_fit(engine, 1) == 1
        with held_connections(url, 8):
            assert servers.senders_that_fit(engine, 4) == 1
        with held_connections(url, 11), pytest.raises(StoreError) as refused:
            servers.senders_that_fit(engine, 4)
    finally:
        engine.dispose()
    assert str(refused.value) == (
        f"the PostgreSQL server at 127.0.0.1:{small_server.port} has room for 0 more connections "
        "(max_connections 12, 12 in use): nothing was sent, every delivery stays queued; "
        "raise its max_connections or end idle sessions, then run again"
    )


def test_publish_now_starts_the_senders_a_small_server_has_room_for(
    site, run_publish, small_server, tmp_path
):
    url = small_server.createdb()
    use_store(site, url)
    edit_config(site, 'transport = "maildir"\n', 'transport = "maildir"\nworkers = 4\n')
    readers = tmp_path / "readers.csv"
    readers.write_text("email\n" + "".join(f"reader{i}@example.com\n" for i in range(400)), encoding="utf-8")
    run_publish(site, "subscribers", "import", str(readers))
    with held_connections(url, 6):  # and the run's own: room for fewer than 4 senders
        result = run_publish(site, "now")
    [warning] = [line for line in result.stderr.splitlines() if "sender" in line]
    assert f"the PostgreSQL server at 127.0.0.1:{small_server.port} has room for" in warning, warning
    assert "instead of 4, each needing 2; raise its max_connections or lower delivery.workers" in warning
    assert "delivered: 400 sent, 0 queued for retry, 0 failed" in result.stdout, result.stdout
    assert len(set(recipients(site))) == 400


def test_a_server_with_no_free_connection_is_one_line_with_the_fix(site, run_publish, small_server):
    url = small_server.createdb()
    use_store(site, url)
    with held_connections(url, 12):
        line = _one_line(run_publish(site, "status", check=False))
    assert f"the server at 127.0.0.1:{small_server.port} has no free connection (" in line, line
    assert line.endswith("raise its max_connections, end idle sessions or lower delivery.workers"), line


def test_a_dry_run_killed_midway_leaves_nothing_for_long(site, run_publish, pg_url):
    """A SIGKILLed dry run cannot drop its scratch schema: the next dry run drops every
    one whose run is gone (it holds no advisory lock), and leaves a running one's alone."""
    use_store(site, pg_url)
    run_publish(site, "collect")
    engine = create_engine(pg_url, poolclass=NullPool)
    try:
        with engine.connect() as live:
            for name in ("publisher_dry_run_killed", "publisher_dry_run_running"):
                live.exec_driver_sql(f'CREATE SCHEMA "{name}"')
                live.exec_driver_sql(f'CREATE TABLE "{name}".articles (id int)')
            live.commit()
            live.exec_driver_sql("SELECT pg_advisory_lock(%(c)s, hashtext(%(n)s))", _scratch_key("running"))
            run_publish(site, "now", "--dry-run")
            left = live.exec_driver_sql("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'publisher%%'")
            assert left.scalars().all() == ["publisher_dry_run_running"]
    finally:
        engine.dispose()


def _scratch_key(suffix: str) -> dict[str, object]:
    from publisher.store import servers

    return {"c": servers.SCRATCH_LOCKS, "n": f"publisher_dry_run_{suffix}"}


def test_a_dry_run_on_a_new_empty_database_works_as_on_a_new_sqlite_site(site, run_publish, pg_url):
    use_store(site, pg_url)
    before = _snapshot(pg_url)
    report = json.loads(run_publish(site, "now", "--dry-run", "--json").stdout)
    assert report["collect"]["new"] == 9 and report["digest"], report
    assert _snapshot(pg_url) == before and not before["rows"]  # still a new, empty database
    assert not (site / "public").exists() and not (site / "publisher.db").exists()


def test_a_user_who_may_not_create_tables_is_one_line_with_the_fix(site, run_publish, postgresql):
    """PostgreSQL 15 took CREATE on the schema public from every user: a database made by
    postgres for a new user is the usual first failure."""
    url = postgresql.createdb()
    db = url.rsplit("/", 1)[1]
    role = f"writer_of_{db}"
    postgresql.tool("createuser", role)
    use_store(site, url.replace("//postgres@", f"//{role}:s3cret@"))
    line = _one_line(run_publish(site, "status", check=False))
    assert line == (
        f"publish: cannot open the store postgresql+psycopg://{role}:***@127.0.0.1:{postgresql.port}/{db}: "
        f"the user {role} may not create the store's tables in the database {db}: make it the database's "
        f"owner (ALTER DATABASE {db} OWNER TO {role}) or GRANT CREATE ON SCHEMA public TO {role}"
    ), line
