"""`publish serve` against slow, flooding and vanishing clients, as a real process on
loopback: bounded request heads and read time, a connection cap that keeps serving
others, no traceback when a client drops mid-body; trusted proxies only by config;
page headers (CSP frame-ancestors, HSTS); strict addresses; Maildir tmp/ leftovers."""

from __future__ import annotations

import os
import resource
import socket
import time
from pathlib import Path

import httpx
import pytest

from publisher.web.limits import ClientLimiter
from tests.sites import publish
from tests.waiting import wait_until
from tests.webserver import Server, free_port, make_site

LIMITS = "read_timeout = 2\nmax_connections = 60\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    site = make_site(tmp_path_factory.mktemp("limits") / "site", port, LIMITS + "hsts = 31536000\n")
    publish(site, "now", "--no-email")
    srv = Server(site, port)
    yield srv
    srv.stop()


def connect(server: Server) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return s


def closed_within(s: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``s`` (reading and dropping what it sends)."""
    start = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            if s.recv(65536) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - start
    return None


def healthy(server: Server, within: float = 2.0) -> bool:
    start = time.monotonic()
    r = httpx.get(server.url("/healthz"), timeout=within)
    answered = r.status_code == 200 or "output" in r.json()  # 503: a site with no outputs built
    return answered and time.monotonic() - start < within


def test_a_huge_request_head_is_refused_early_and_others_are_served(server: Server) -> None:
    s = connect(server)
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
    sent = 0
    try:
        while sent < 64 * 1024 * 1024:  # the server stops reading long before this
            s.sendall(b"a" * 65536)
            sent += 65536
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert sent < 8 * 1024 * 1024, f"the server read {sent} bytes of one header"
    s.close()
    assert healthy(server)


@pytest.mark.parametrize(
    "head, piece, poll",
    [
        (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: 1\r\n", 0.4),
        (
            b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 400\r\n\r\n",
            b"e",
            0.3,
        ),
    ],
    ids=["header lines", "body bytes"],
)
def test_a_client_dripping_its_request_is_cut_off_and_others_are_served(
    server: Server, head: bytes, piece: bytes, poll: float
) -> None:
    s = connect(server)
    s.sendall(head)
    start, closed = time.monotonic(), None
    while time.monotonic() - start < 10:
        try:
            s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            closed = time.monotonic() - start
            break
        assert healthy(server)
        if closed_within(s, poll) is not None:
            closed = time.monotonic() - start
            break
    s.close()
    assert closed is not None and closed < 5, "a client dripping its request was never cut off"


def test_a_silent_connection_is_closed_after_the_read_timeout(server: Server) -> None:
    s = connect(server)
    took = closed_within(s, 8)
    s.close()
    assert took is not None and 1.5 < took < 5, took


def test_idle_connections_past_the_cap_make_room_for_new_clients(server: Server) -> None:
    idle = [connect(server) for _ in range(150)]  # the cap is 60
    try:
        time.sleep(0.3)
        for _ in range(5):
            assert healthy(server)
        still_open = sum(closed_within(s, 0.05) is None for s in idle)
        assert still_open <= 60
    finally:
        for s in idle:
            s.close()


def test_a_client_dropping_mid_body_leaves_one_line_not_a_traceback(server: Server) -> None:
    before = server.log.read_text()
    for _ in range(5):
        s = connect(server)
        s.sendall(
            b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: same-origin\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nemail=dro"
        )
        time.sleep(0.1)
        s.close()
    dropped = "closed the connection before the request was complete"
    wait_until(lambda: server.log.read_text()[len(before) :].count(dropped) >= 5, 10, "five drops logged")
    assert healthy(server)
    added = server.log.read_text()[len(before) :]
    assert "Traceback" not in added and "Exception in ASGI" not in added, added
    assert added.count(dropped) == 5, added


def test_pages_may_not_be_framed_and_hsts_is_sent_when_configured(server: Server) -> None:
    page = server.client.get("/")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"
    assert server.client.get("/rss.xml").headers.get("x-frame-options") is None  # feeds are data
    for path in ("/", "/rss.xml", "/healthz", "/subscribe"):
        assert server.client.get(path).headers["strict-transport-security"] == "max-age=31536000", path


def three_claimed_clients(site: Path, port: int) -> list[int]:
    """POST /subscribe three times, each claiming another X-Forwarded-For client."""
    srv = Server(site, port)
    try:
        return [
            srv.client.post(
                "/subscribe",
                data={"email": f"xff{i}@example.com"},
                headers={"x-forwarded-for": f"203.0.113.{i}"},
            ).status_code
            for i in range(3)
        ]
    finally:
        srv.stop()


def test_x_forwarded_for_counts_only_from_a_configured_proxy(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port, "requests_per_client = 2\n")
    assert three_claimed_clients(site, port) == [200, 200, 429]  # one client, whatever the header says
    config = site / "config.toml"
    config.write_text(
        config.read_text().replace("[server]\n", '[server]\ntrusted_proxies = ["127.0.0.0/8"]\n', 1)
    )
    assert three_claimed_clients(site, port) == [200, 200, 200]  # three clients behind the proxy


def test_a_bad_trusted_proxy_is_a_config_error(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", free_port(), 'trusted_proxies = ["not-an-address"]\n')
    result = publish(site, "serve", check=False)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("server.trusted_proxies: 'not-an-address' is not an IP address or network")
    )


def test_serve_raises_its_open_file_limit_for_the_connections_it_allows(tmp_path: Path) -> None:
    """Started with 256 open files allowed, 300 idle clients used to refuse everyone."""
    port = free_port()
    site = make_site(tmp_path / "site", port)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    srv = Server(site, port, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
    idle = []
    try:
        idle = [connect(srv) for _ in range(300)]
        time.sleep(0.3)
        assert healthy(srv, within=3)
    finally:
        for s in idle:
            s.close()
        srv.stop()
    assert "Too many open files" not in srv.log.read_text()


def test_the_client_limiter_keeps_a_bounded_table_and_forgets_expired_windows() -> None:
    limiter = ClientLimiter(limit=2, window=10.0, max_keys=1000)
    for i in range(5000):
        assert limiter.hit(f"198.51.{i // 250}.{i % 250}", now=float(i) / 1000)
    assert len(limiter) <= 1000
    assert limiter.hit("a", now=100.0) and limiter.hit("a", now=100.0) and not limiter.hit("a", now=101.0)
    assert len(limiter) == 1  # every window older than 10 s was dropped on the way
    assert limiter.hit("a", now=110.5)  # a's window ended: a new one


def test_a_local_part_over_64_characters_is_refused(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", free_port())
    result = publish(site, "subscribers", "add", "a" * 65 + "@example.com", check=False)
    assert result.returncode == 2 and "too long before the @-sign" in result.stderr
    assert publish(site, "subscribers", "add", "a" * 64 + "@example.com").returncode == 0


def test_leftovers_a_killed_run_left_in_outbox_tmp_are_swept(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", free_port())
    publish(site, "subscribers", "add", "reader@example.com")
    tmp = site / "outbox" / "tmp"
    tmp.mkdir(parents=True)
    old, fresh = tmp / "1700000000.M1P1Q1.host", tmp / "in-progress.host"
    old.write_bytes(b"half a message")
    fresh.write_bytes(b"being written")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    publish(site, "now")
    assert not old.exists() and fresh.exists()
    assert len(list((site / "outbox" / "new").iterdir())) == 1
