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


def test_status_json_is_the_report_the_text_shows(site, run_publish):
    import json
    import tomllib
    from datetime import datetime

    schedule = tomllib.loads((site / "config.toml").read_text(encoding="utf-8"))["schedule"]
    run_publish(site, "subscribers", "add", "reader@example.com")
    now = run_publish(site, "now").stdout
    key = "digest/" + now[now.index("digest of ") + len("digest of ") :].split(":")[0]
    report = json.loads(run_publish(site, "status", "--json").stdout)
    assert report["scheduler"] is None and report["lock"] is None
    assert [(j["job"], j["schedule"], j["last"]) for j in report["jobs"]] == [
        ("collect", schedule["collect"], None),
        ("digest", schedule["digest"], None),
    ]
    assert all(datetime.fromisoformat(j["next_run"]).utcoffset() is not None for j in report["jobs"])
    [seeds] = report["sources"]
    assert seeds["source"] == "seeds" and seeds["articles"] == len(list((site / "seeds").iterdir()))
    assert seeds["read"] and seeds["ok"] and seeds["error"] is None
    assert datetime.fromisoformat(seeds["succeeded"]) >= datetime.fromisoformat(seeds["newest"])
    assert report["articles"] == report["published"] == seeds["articles"]
    assert report["subscribers"]["active"] == 1 and report["digests"] == 1
    assert report["deliveries"] == {"sent": 1}
    assert [(d["key"], d["status"], d["deliveries"]) for d in report["recent"]] == [
        (key, "done", {"sent": 1})
    ]
    text = run_publish(site, "status").stdout
    assert f"articles: {report['articles']} stored, {report['published']} published" in text
    assert f"  {key}  done     1 sent, 0 queued, 0 failed  {report['recent'][0]['subject']}" in text
