"""The database's clock (publisher.store.clock): what locks and claims judge expiry by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Float, bindparam, select

from publisher.store import Store
from publisher.store.clock import db_time, now
from publisher.store.schema import UTCDateTime, locks


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    s = Store.open(url)
    yield s
    s.close()


def test_the_database_time_is_stored_like_every_other_time_and_compares_with_it(store):
    engine = store.engine
    before = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(locks.insert().values(name="x", owner="o", expires=db_time(engine.dialect.name, 30)))
        stored = conn.execute(select(locks.c.expires)).scalar_one()
        later = conn.execute(select(locks.c.name).where(locks.c.expires > db_time(engine.dialect.name))).all()
        gone = conn.execute(
            select(locks.c.name).where(
                locks.c.expires > db_time(engine.dialect.name, bindparam("ttl", type_=Float))
            ),
            {"ttl": 31.0},
        ).all()
        at = now(conn)
    # the same format UTCDateTime reads back: an aware UTC datetime
    assert stored.tzinfo is UTC
    assert before + timedelta(seconds=29) <= stored <= datetime.now(UTC) + timedelta(seconds=31)
    assert later == [("x",)] and gone == []
    assert abs((at - datetime.now(UTC)).total_seconds()) < 5
    assert len(UTCDateTime().process_bind_param(at, None)) == 27


def test_postgresql_sessions_compile_nothing_just_in_time(pg_url):
    """A claim's re-check over a long list passed jit_above_cost and compiled functions
    at every commit (170-210 ms instead of 0.5 ms, bench/million.py): every session of
    the store runs with jit off."""
    s = Store.open(pg_url)
    try:
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW jit").scalar_one() == "off"
    finally:
        s.close()
