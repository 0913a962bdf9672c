"""What the suppression list costs sending: the audience of a newsletter read with and
without the suppression filter (``store.feedback.not_suppressed``), and the send-time
check of one reader, on a SQLite store of 100,000 readers with 1 % of them suppressed
and a few whole domains.

    python bench/suppression.py [--readers 100000]

Prints a table. Goals (issue #16): the filter adds at most 10 µs per reader to reading
the audience (each reader: two lookups of the suppression key; an issue reads it once,
to queue its deliveries), and the send-time check of one reader (the sending loop asks
before every message) stays under 100 µs; the same check without the filter is shown
as the reference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select  # noqa: E402

from publisher.store import Store  # noqa: E402
from publisher.store.feedback import not_suppressed  # noqa: E402
from publisher.store.ledger import _Compiled  # noqa: E402
from publisher.store.schema import subscribers, subscriptions, suppressions  # noqa: E402

ADDED_GOAL = 10e-6  # seconds per reader
CHECK_GOAL = 100e-6


def fill(store: Store, readers: int) -> None:
    now = datetime.now(UTC)
    email = [f"reader{i}@domain{i % 500}.example" for i in range(readers)]
    with store.engine.begin() as conn:
        conn.execute(
            insert(subscribers),
            [
                {
                    "public_id": f"{i:024x}",
                    "email": e,
                    "name": "",
                    "status": "active",
                    "created": now,
                    "changed": now,
                }
                for i, e in enumerate(email)
            ],
        )
        conn.execute(
            insert(subscriptions),
            [
                {"subscriber_id": i + 1, "newsletter": "daily", "status": "active", "sections": "[]"}
                | {"created": now, "changed": now}
                for i in range(readers)
            ],
        )
        entries = [email[i] for i in range(0, readers, 100)] + [f"@domain{d}.example" for d in range(3)]
        conn.execute(
            insert(suppressions),
            [{"entry": e, "reason": "manual", "detail": "", "created": now} for e in entries],
        )


def best(fn, runs: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_check(store: Store, statement, n: int = 20_000) -> float:  # type: ignore[no-untyped-def]
    """Seconds per run of ``statement`` as the sending loop runs its check: compiled
    once, on a driver cursor."""
    compiled = _Compiled(store.engine, statement)
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        start = time.perf_counter()
        for _ in range(n):
            cur.execute(compiled.sql, compiled.args())
            cur.fetchone()
        return (time.perf_counter() - start) / n
    finally:
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readers", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{folder}/bench.db")
        fill(store, args.readers)
        audience = (
            select(func.count())
            .select_from(subscriptions.join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id))
            .where(subscriptions.c.newsletter == "daily", subscriptions.c.status == "active")
            .where(subscribers.c.status == "active")
        )
        filtered = audience.where(not_suppressed(subscribers.c.email))
        with store.engine.connect() as conn:
            plain_time = best(lambda: conn.execute(audience).scalar())
            filtered_time = best(lambda: conn.execute(filtered).scalar())
            kept = conn.execute(filtered).scalar()
        plain_check = time_check(store, select(subscribers.c.status).where(subscribers.c.id == 4242))
        per_check = time_check(
            store,
            select(subscribers.c.status).where(subscribers.c.id == 4242, not_suppressed(subscribers.c.email)),
        )
        store.close()
    added = (filtered_time - plain_time) / args.readers
    print(f"{'measure':<44}{'value':>14}{'goal':>14}")
    print(f"{'audience without the filter':<44}{plain_time * 1000:>11.0f} ms{'':>14}")
    print(f"{'audience with the filter':<44}{filtered_time * 1000:>11.0f} ms{'':>14}")
    print(
        f"{'added per reader':<44}{added * 1e6:>11.1f} µs{ADDED_GOAL * 1e6:>11.0f} µs "
        f"{'ok' if added <= ADDED_GOAL else 'MISSED'}"
    )
    print(f"{'send-time check without the filter':<44}{plain_check * 1e6:>11.1f} µs{'':>14}")
    print(
        f"{'send-time check of one reader':<44}{per_check * 1e6:>11.1f} µs{CHECK_GOAL * 1e6:>11.0f} µs "
        f"{'ok' if per_check <= CHECK_GOAL else 'MISSED'}"
    )
    print(f"readers kept: {kept} of {args.readers}")


if __name__ == "__main__":
    main()
