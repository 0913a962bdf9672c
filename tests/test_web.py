"""`publish serve` as a real process on loopback: static files, subscribe, confirm,
one-click unsubscribe. State is read back from the real SQLite store and the real
Maildir outbox."""

from __future__ import annotations

import gzip
import itertools
import signal
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import httpx
import pytest
from itsdangerous import TimestampSigner

from publisher.output import write_atomic
from publisher.store import Store
from publisher.tokens import Signer
from tests.sites import edit_config
from tests.sites import publish as _publish
from tests.waiting import wait_until
from tests.webserver import (
    OLD_SECRET,
    SECRET,
    Server,
    confirmations_settled,
    free_port,
    link_in,
    mails_to,
    make_site,
    status_of,
    wait_for_mails,
)
from tests.webserver import operator_publish as publish

_clients = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    site = make_site(
        tmp_path_factory.mktemp("web") / "site",
        port,
        'requests_per_client = 6\ntrusted_proxies = ["127.0.0.1"]\n',  # new_client() stands behind it
    )
    publish(site, "now", "--no-email")
    srv = Server(site, port)
    yield srv
    srv.stop()


def new_client() -> dict[str, str]:
    """A distinct client address (the server trusts X-Forwarded-For from loopback here)."""
    n = next(_clients)
    return {"x-forwarded-for": f"198.51.{n // 250}.{n % 250 + 1}"}


def subscribe(server: Server, email: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return server.client.post("/subscribe", data={"email": email}, headers=headers or new_client())


def public_id(server: Server, email: str) -> str:
    store = Store.open(f"sqlite:///{server.site / 'publisher.db'}")
    try:
        sub = store.subscribers.get(email)
        assert sub is not None
        return sub.public_id
    finally:
        store.close()


def confirmed(server: Server, email: str) -> None:
    """Subscribe and confirm ``email`` through the server, as a reader would."""
    before = len(mails_to(server.site, email))
    assert subscribe(server, email).status_code == 200
    [*_, mail] = wait_for_mails(server.site, email, before + 1)
    assert (
        server.client.post(link_in(mail, "confirm"), headers={"sec-fetch-site": "same-origin"}).status_code
        == 200
    )
    assert status_of(server, email) == "active"


def raw_get(server: Server, target: str) -> tuple[int, bytes]:
    """A request line sent byte for byte (HTTP clients normalise ``..`` away)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


# -- static files ----------------------------------------------------------------------


def test_feeds_and_pages_are_served_with_their_content_types(server: Server) -> None:
    public = server.site / "public"
    write_atomic(
        public / "categories" / "economy" / "feed.json", b'{"version": "https://jsonfeed.org/version/1.1"}'
    )
    write_atomic(public / "categories" / "economy" / "rss.xml", (public / "rss.xml").read_bytes())
    article = next((public / "articles").glob("*.html"))
    expected = {
        "/rss.xml": "application/rss+xml",
        "/atom.xml": "application/atom+xml",
        "/categories/economy/feed.json": "application/feed+json",
        "/categories/economy/rss.xml": "application/rss+xml",
        "/": "text/html; charset=utf-8",
        "/index.html": "text/html; charset=utf-8",
        f"/articles/{article.name}": "text/html; charset=utf-8",
        "/digests/": "text/html; charset=utf-8",
    }
    for path, ctype in expected.items():
        r = server.client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(ctype), (path, r.headers["content-type"])
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "max-age" in r.headers["cache-control"]
    assert server.client.get("/rss.xml").content == (public / "rss.xml").read_bytes()
    assert server.client.get("/").content == (public / "index.html").read_bytes()
    r = server.client.get("/digests")
    assert (
        r.status_code == 301
        and httpx.URL(server.url("/digests")).join(r.headers["location"]).path == "/digests/"
    )
    missing = server.client.get("/no-such-page.html")
    assert missing.status_code == 404 and "Page not found" in missing.text


def test_etag_and_last_modified_answer_304(server: Server) -> None:
    first = server.client.get("/rss.xml")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('"') and modified.endswith("GMT")
    again = server.client.get("/rss.xml", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert server.client.get("/rss.xml", headers={"if-none-match": f'"stale", W/{etag}'}).status_code == 304
    assert server.client.get("/rss.xml", headers={"if-modified-since": modified}).status_code == 304
    older = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert server.client.get("/rss.xml", headers={"if-modified-since": older}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    r = server.client.get("/rss.xml", headers={"if-none-match": '"stale"', "if-modified-since": modified})
    assert r.status_code == 200 and r.content == first.content
    head = server.client.head("/rss.xml")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == etag and head.headers["content-length"] == str(len(first.content))


def test_gzip_when_the_client_accepts_it(server: Server) -> None:
    plain = server.client.get("/rss.xml", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    raw = httpx.get(server.url("/rss.xml"), headers={"accept-encoding": "gzip, br"})
    assert raw.headers["content-encoding"] == "gzip" and raw.headers["vary"] == "accept-encoding"
    assert raw.content == plain.content  # httpx decoded it
    with httpx.stream("GET", server.url("/rss.xml"), headers={"accept-encoding": "gzip"}) as r:
        packed = b"".join(r.iter_raw())
    assert len(packed) < len(plain.content) / 2 and gzip.decompress(packed) == plain.content
    assert raw.headers["etag"] != plain.headers["etag"]  # two representations, two tags
    assert (
        server.client.get("/rss.xml", headers={"accept-encoding": "gzip;q=0"}).headers.get("content-encoding")
        is None
    )
    r = server.client.get(
        "/rss.xml", headers={"accept-encoding": "gzip", "if-none-match": raw.headers["etag"]}
    )
    assert r.status_code == 304


def test_a_rewritten_file_is_served_within_a_second_and_a_deleted_one_is_gone(server: Server) -> None:
    target = server.site / "public" / "extra.xml"
    write_atomic(target, b"<a>one</a>")
    first = server.client.get("/extra.xml")
    assert first.content == b"<a>one</a>"
    write_atomic(target, b"<a>two, longer</a>")
    wait_until(
        lambda: server.client.get("/extra.xml").content == b"<a>two, longer</a>", 3, "the new bytes served"
    )
    assert server.client.get("/extra.xml").headers["etag"] != first.headers["etag"]
    assert (
        server.client.get("/extra.xml", headers={"if-none-match": first.headers["etag"]}).status_code == 200
    )
    target.unlink()
    wait_until(lambda: server.client.get("/extra.xml").status_code == 404, 3, "the deleted file gone")


def test_a_file_too_large_for_the_cache_is_streamed(server: Server) -> None:
    big = server.site / "public" / "big.json"
    data = b"[" + b"0," * (9 * 1024 * 1024) + b"0]"
    write_atomic(big, data)
    r = server.client.get("/big.json")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "application/json" and r.headers["etag"]
    big.unlink()


def test_no_path_leaves_the_output_folder(server: Server) -> None:
    public = server.site / "public"
    (public / "leak.toml").symlink_to(server.site / "config.toml")
    (public / ".hidden.xml").write_bytes(b"hidden")
    (public / "outside").symlink_to(server.site, target_is_directory=True)
    secret_bits = (b"[server]", b"secret_env", b"SQLite format")
    attempts = [
        "/../config.toml",
        "/..%2fconfig.toml",
        "/%2e%2e/config.toml",
        "/%2e%2e%2fconfig.toml",
        "/articles/../../config.toml",
        "/articles/%2e%2e/%2e%2e/publisher.db",
        "//etc/passwd",
        "/..\\config.toml",
        "/%5c..%5cconfig.toml",
        "/leak.toml",
        "/outside/config.toml",
        "/.hidden.xml",
        "/%2ehidden.xml",
        "/rss.xml%00.html",
        "/./rss.xml/..",
        "/etc/passwd",
    ]
    for target in attempts:
        status, body = raw_get(server, target)
        assert status in (400, 404), (target, status)
        assert not any(bit in body for bit in secret_bits), target
    assert raw_get(server, "/rss.xml")[0] == 200


def test_healthz(server: Server) -> None:
    r = server.client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


# -- subscribe, confirm, unsubscribe ---------------------------------------------------


def test_subscribe_confirm_digest_and_one_click_unsubscribe(server: Server) -> None:
    email = "Min-ji.Kim@Example.ORG"
    address = "min-ji.kim@example.org"
    r = subscribe(server, email)
    assert r.status_code == 200 and "Check your inbox" in r.text
    [mail] = wait_for_mails(server.site, address, 1)
    assert mail["Subject"] == "Confirm your subscription to Korea JoongAng Daily"
    assert mail["From"] == "Korea JoongAng Daily <digest@news.example.com>" and mail["To"] == address
    assert mail["Date"] and mail["Message-ID"] and mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "multipart/alternative"
    assert link_in(mail, "confirm") in mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert status_of(server, address) == "pending"
    confirm = link_in(mail, "confirm")
    assert address not in confirm.lower() and confirm.startswith(server.base + "/confirm/")
    page = server.client.get(confirm)
    assert page.status_code == 200 and "<form" in page.text and status_of(server, address) == "pending"
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    done = server.client.post(confirm, headers={"sec-fetch-site": "same-origin"})
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert status_of(server, address) == "active"
    assert (
        server.client.post(confirm, headers={"sec-fetch-site": "same-origin"}).status_code == 200
    )  # idempotent

    publish(server.site, "now")
    digest = [m for m in mails_to(server.site, address) if m["List-Unsubscribe"]]
    assert len(digest) == 1
    unsubscribe_url = digest[0]["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    assert unsubscribe_url.startswith(server.base + "/unsubscribe/")
    # Exactly what a mail provider sends (RFC 8058): no cookie, no Origin, no CSRF token.
    one_click = httpx.post(
        unsubscribe_url,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert one_click.status_code == 200 and "You are unsubscribed" in one_click.text
    assert status_of(server, address) == "unsubscribed"  # committed before the answer
    again = httpx.post(unsubscribe_url, content=b"List-Unsubscribe=One-Click", follow_redirects=False)
    assert again.status_code == 200
    log = server.log.read_text()
    assert '"POST /unsubscribe/[token] HTTP/1.1" 200' in log
    assert unsubscribe_url.rsplit("/", 1)[1] not in log and confirm.rsplit("/", 1)[1] not in log

    (server.site / "seeds" / "zz-new.md").write_text(
        '+++\ntitle = "A later story"\npublished = 2025-06-01T09:00:00+09:00\n+++\nBody.\n', encoding="utf-8"
    )
    publish(server.site, "now")
    assert len([m for m in mails_to(server.site, address) if m["List-Unsubscribe"]]) == 1


def test_get_and_head_of_every_link_change_nothing(server: Server) -> None:
    pending, active = "scanner-pending@example.com", "scanner-active@example.com"
    subscribe(server, pending)
    [mail] = wait_for_mails(server.site, pending, 1)
    confirmed(server, active)
    signer = Signer(SECRET)
    links = [
        link_in(mail, "confirm"),
        server.url("/unsubscribe/" + signer.sign("unsubscribe", public_id(server, pending))),
        server.url("/unsubscribe/" + signer.sign("unsubscribe", public_id(server, active))),
    ]
    mails_before = len(mails_to(server.site, pending)) + len(mails_to(server.site, active))
    for link in links:
        for _ in range(100):
            assert server.client.get(link).status_code == 200
            assert server.client.head(link).status_code == 200
    assert status_of(server, pending) == "pending" and status_of(server, active) == "active"
    assert len(mails_to(server.site, pending)) + len(mails_to(server.site, active)) == mails_before


def test_forged_tampered_cross_purpose_and_expired_tokens_change_nothing(server: Server) -> None:
    email = "tokens@example.com"
    subscribe(server, email)
    wait_for_mails(server.site, email, 1)
    pid = public_id(server, email)
    good = Signer(SECRET).sign("confirm", pid)
    with mock.patch.object(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 8 * 86400):
        expired = Signer(SECRET).sign("confirm", pid)
    payload, stamp, signature = good.split(".")
    flipped = signature[:-3] + ("A" if signature[-3] != "A" else "B") + signature[-2:]
    other_id = Signer(SECRET).sign("confirm", "0" * 24)
    bad = {
        "forged": Signer("not-our-secret").sign("confirm", pid),
        "tampered signature": f"{payload}.{stamp}.{flipped}",
        "tampered payload": f"{payload[:-2]}xx.{stamp}.{signature}",
        "truncated": good[:-6],
        "cross-purpose": Signer(SECRET).sign("unsubscribe", pid),
        "expired": expired,
        "unknown subscriber": other_id,
        "garbage": "not-a-token",
    }
    bodies = set()
    for name, token in bad.items():
        for method in ("GET", "POST"):
            r = server.client.request(method, f"/confirm/{token}", headers={"sec-fetch-site": "same-origin"})
            assert r.status_code == 400, (name, method)
            bodies.add(r.text)
        assert status_of(server, email) == "pending", name
    assert len(bodies) == 1 and "not valid or has expired" in bodies.pop()

    confirmed(server, "tokens-active@example.com")
    apid = public_id(server, "tokens-active@example.com")
    for token in (
        Signer(SECRET).sign("confirm", apid),  # cross-purpose
        Signer("not-our-secret").sign("unsubscribe", apid),
        Signer(SECRET).sign("unsubscribe", apid)[:-1],
    ):
        assert server.client.post(f"/unsubscribe/{token}").status_code == 400
        assert server.client.get(f"/unsubscribe/{token}").status_code == 400
    assert status_of(server, "tokens-active@example.com") == "active"


def test_year_old_unsubscribe_links_signed_with_the_previous_secret_still_work(server: Server) -> None:
    email = "rotated@example.com"
    confirmed(server, email)
    with mock.patch.object(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 400 * 86400):
        token = Signer(OLD_SECRET).sign("unsubscribe", public_id(server, email))  # and over a year old
    assert server.client.post(f"/unsubscribe/{token}").status_code == 200
    assert status_of(server, email) == "unsubscribed"


def test_an_old_confirmation_link_cannot_undo_an_unsubscribe(server: Server) -> None:
    email = "changed-mind@example.com"
    subscribe(server, email)
    [mail] = wait_for_mails(server.site, email, 1)
    confirm = link_in(mail, "confirm")
    assert server.client.post(confirm).status_code == 200
    unsubscribe = Signer(SECRET).sign("unsubscribe", public_id(server, email))
    link_second = int(time.time())  # tokens carry whole seconds: unsubscribe in a later one
    wait_until(lambda: int(time.time()) > link_second, 2, "the next whole second")
    assert server.client.post(f"/unsubscribe/{unsubscribe}").status_code == 200
    assert server.client.post(confirm).status_code == 400
    assert status_of(server, email) == "unsubscribed"
    # Subscribing again sends a fresh link, which works.
    subscribe(server, email)
    [*_, fresh] = wait_for_mails(server.site, email, 2)
    assert server.client.post(link_in(fresh, "confirm")).status_code == 200
    assert status_of(server, email) == "active"


def test_the_answer_is_the_same_for_new_pending_confirmed_and_unsubscribed_addresses(server: Server) -> None:
    publish(server.site, "subscribers", "add", "same-active@example.com")
    publish(server.site, "subscribers", "add", "same-gone@example.com")
    publish(server.site, "subscribers", "remove", "same-gone@example.com")
    subscribe(server, "same-pending@example.com")
    wait_for_mails(server.site, "same-pending@example.com", 1)
    states = {
        "new": "same-new@example.com",
        "pending": "same-pending@example.com",
        "active": "same-active@example.com",
        "unsubscribed": "same-gone@example.com",
    }
    answers, timings = {}, {}
    for state, email in states.items():
        start = time.perf_counter()
        r = subscribe(server, email)
        timings[state] = [time.perf_counter() - start]
        answers[state] = (r.status_code, r.text, sorted((k, v) for k, v in r.headers.items() if k != "date"))
    assert len(set(map(repr, answers.values()))) == 1, answers
    assert answers["new"][0] == 200
    for state, email in states.items():  # one more round each, to compare times
        start = time.perf_counter()
        subscribe(server, email)
        timings[state].append(time.perf_counter() - start)
    medians = [statistics.median(t) for t in timings.values()]
    assert max(medians) - min(medians) < 0.05, timings
    # What happened behind the answer: confirmation for all but the active address,
    # which is told it is already subscribed; the unsubscribed one is not reactivated.
    assert status_of(server, "same-new@example.com") == "pending"
    assert status_of(server, "same-gone@example.com") == "unsubscribed"
    [*_, note] = wait_for_mails(server.site, "same-active@example.com", 2)
    assert note["Subject"].startswith("You are already subscribed")
    assert "/preferences/" in link_in(note, "preferences")  # to change what it gets, or leave


def test_at_most_three_confirmation_mails_per_address_an_hour(server: Server) -> None:
    email = "limited@example.com"
    codes = [subscribe(server, email).status_code for _ in range(5)]  # each from another client
    assert codes == [200, 200, 200, 429, 429]
    page = subscribe(server, email)
    assert "Too many requests" in page.text and page.headers["retry-after"]
    wait_until(lambda: confirmations_settled(server.site), 10, "the confirmations sent")
    assert len(mails_to(server.site, email)) == 3


def test_the_address_limit_holds_under_concurrent_requests(server: Server) -> None:
    email = "stampede@example.com"
    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = sorted(pool.map(lambda _: subscribe(server, email).status_code, range(10)))
    assert codes == [200] * 3 + [429] * 7
    wait_until(lambda: confirmations_settled(server.site), 10, "the confirmations sent")
    assert len(mails_to(server.site, email)) == 3


def test_one_client_is_limited_across_addresses(server: Server) -> None:
    client = new_client()
    codes = [subscribe(server, f"client-{i}@example.com", client).status_code for i in range(8)]
    assert codes == [200] * 6 + [429] * 2
    assert subscribe(server, "client-other@example.com").status_code == 200  # another client


def test_cross_site_forms_are_refused_and_one_click_is_exempt(server: Server) -> None:
    email = "csrf@example.com"
    for headers in (
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
    ):
        r = subscribe(server, email, {**new_client(), **headers})
        assert r.status_code == 403, headers
    wait_until(lambda: confirmations_settled(server.site), 10, "the confirmations sent")
    assert mails_to(server.site, email) == [] and status_of(server, email) is None
    ok = subscribe(server, email, {**new_client(), "sec-fetch-site": "same-origin", "origin": server.base})
    assert ok.status_code == 200
    [mail] = wait_for_mails(server.site, email, 1)
    confirm = link_in(mail, "confirm")
    assert server.client.post(confirm, headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert status_of(server, email) == "pending"
    assert server.client.post(confirm, headers={"sec-fetch-site": "same-origin"}).status_code == 200
    token = Signer(SECRET).sign("unsubscribe", public_id(server, email))
    r = server.client.post(
        f"/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"sec-fetch-site": "cross-site", "origin": "https://mail.example"},
    )
    assert r.status_code == 200 and status_of(server, email) == "unsubscribed"


def test_an_invalid_address_is_refused_with_the_form_again(server: Server) -> None:
    for bad in ("not-an-address", "a@b", "x@example.com\r\nBcc: victim@example.com", ""):
        r = subscribe(server, bad)
        assert r.status_code == 400 and 'name="email"' in r.text, bad
    assert (
        server.client.post("/subscribe", content=b"email=" + b"a" * 20000, headers=new_client()).status_code
        == 413
    )


def test_serve_listens_where_server_config_says_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port)
    config = site / "config.toml"
    config.write_text(config.read_text().replace("port = 8000", f"port = {port}"))
    srv = Server(site, port, port_flag=False)  # no --port: [server] host and port
    assert srv.client.get("/healthz").status_code == 503  # it answers (no outputs built yet)
    srv.stop()
    # uvicorn finishes the lifespan (mails already promised go out), then exits by the
    # signal it caught, as a service manager expects.
    assert srv.proc.returncode in (0, -signal.SIGTERM), srv.log.read_text()
    assert "Application shutdown complete" in srv.log.read_text()


def test_a_busy_port_is_a_one_line_error(server: Server) -> None:
    result = _publish(server.site, "serve", "--port", str(server.port), check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"publish: cannot listen on 127.0.0.1:{server.port}: Address already in use"
    )


def test_other_methods_are_refused_with_allow(server: Server) -> None:
    r = server.client.put("/subscribe")
    assert r.status_code == 405 and set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    r = server.client.delete("/rss.xml")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert (server.site / "public" / "rss.xml").exists()


def test_serve_with_scheduler_keeps_the_timetable_and_serves_what_it_writes(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port)
    edit_config(site, 'digest = "0 7 * * *"', 'digest = "* * * * * *"')
    edit_config(site, 'collect = "*/15 * * * *"', 'collect = ""')
    publish(site, "subscribers", "add", "timetable@example.com")
    assert not (site / "public").exists()
    srv = Server(site, port, args=("--scheduler",))
    try:
        wait_until(lambda: srv.client.get("/rss.xml").status_code == 200, 20, "the feeds written")
        [digest] = wait_for_mails(site, "timetable@example.com", 1, timeout=20)
        unsubscribe = digest["List-Unsubscribe"].split(",")[0].strip().strip("<>")
        assert httpx.post(unsubscribe, content=b"List-Unsubscribe=One-Click").status_code == 200
        assert status_of(srv, "timetable@example.com") == "unsubscribed"
    finally:
        srv.stop()
    assert srv.proc.returncode in (0, -signal.SIGTERM), srv.log.read_text()
    assert "Application shutdown complete" in srv.log.read_text()
    status = _publish(site, "status", env={"PUBLISHER_SECRET": SECRET}).stdout
    assert "scheduler: not running" in status  # its lease was released on the way out


def test_ipv6_clients_are_limited_by_their_slash_64() -> None:
    from starlette.requests import Request

    from publisher.web.limits import client_key

    def key(host: str) -> str:
        return client_key(Request({"type": "http", "client": (host, 4321), "headers": []}))

    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::1") != key("2001:db8:1:2::1")
    assert key("198.51.100.7") == "198.51.100.7" != key("198.51.100.8")
    assert key("::ffff:198.51.100.7") == "198.51.100.7"
