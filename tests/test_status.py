"""`publish status` shows the health of every source, so a broken upstream is visible."""

import socket


def test_status_shows_a_failing_feed_source_and_a_healthy_folder(site, run_publish):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = site / "config.toml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace(
            "[store]",
            f'[[sources]]\ntype = "feed"\nname = "wire"\nurl = "http://127.0.0.1:{port}/feed.xml"\ntimeout = 2\n\n[store]',
        ),
        encoding="utf-8",
    )
    result = run_publish(site, "now", "--no-email")
    assert "1 source failed" in result.stdout or "source failed" in result.stderr
    status = run_publish(site, "status").stdout
    wire = status[status.index("source wire") :].splitlines()[:2]
    assert "0 articles seen" in wire[0]
    assert "FAILING" in wire[1] and f"127.0.0.1:{port}" in wire[1] and "last success: never" in wire[1]
    seeds = status[status.index("source seeds") :].splitlines()[:2]
    assert "9 articles seen" in seeds[0]
    assert " ok; last success: 20" in seeds[1]
