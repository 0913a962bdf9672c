"""The digest as readers get it: size, styles that survive premailer, corrections,
per-recipient copies identical to a full render, the editor's checks, DKIM."""

from __future__ import annotations

import http.server
import json
import mailbox
import quopri
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

import dkim
import pytest

from publisher import audience, pipeline
from publisher import config as configuration
from publisher import digest as digests
from publisher.checks import GMAIL_CLIP_BYTES, check_message, sent_bytes
from publisher.mail import MessageTemplate, Recipient
from publisher.store import Store
from tests.sites import ROOT, correct_the_seed, edit_config

NOW = datetime(2026, 1, 10, 7, 0, tzinfo=UTC)


def messages(site):
    box = mailbox.Maildir(site / "outbox", create=False)
    return [BytesParser(policy=policy.default).parsebytes(box.get_bytes(k)) for k in box.keys()]


def subscribe(config, *addresses):
    store = Store.open(config.store_url)
    try:
        for a in addresses:
            audience.add(store, a, "김민지")
    finally:
        store.close()


ENGLISH = {
    "title": "Story number {i} about a long and detailed subject in Seoul 서울",
    "summary": "Summary {i}: " + "Seoul officials said the plan would change how the city works. " * 5,
    "authors": '"Reporter {i}", "Kim Min-ji"',
    "topics": ["Politics", "Business", "Culture", "Sports", "National"],
    "file": "9{i:02}_long.md",
}
KOREAN = {
    "title": "서울 지하철 {i}호선 개통, 시민 반응은 뜨거워",
    "summary": "서울시는 오늘 새 지하철 노선을 개통했다고 밝혔다. 시민들의 출퇴근 시간이 크게 줄어들 전망이다. "
    * 3,
    "authors": '"김민지", "이서준"',
    "topics": ["사회"],
    "file": "8{i:02}_korean.md",
}


def write_articles(site, n, start=0, words=ENGLISH, length=280):
    for i in range(start, start + n):
        topic = words["topics"][i % len(words["topics"])]
        (site / "seeds" / words["file"].format(i=i)).write_text(
            f'+++\ntitle = "{words["title"].format(i=i)}"\n'
            f"published = 2026-01-0{1 + i % 9}T0{i % 10}:00:00+09:00\n"
            f'authors = [{words["authors"].format(i=i)}]\ntags = ["{topic}"]\n'
            f'summary = "{words["summary"].format(i=i)[:length]}"\n+++\nBody of story {i}.\n',
            encoding="utf-8",
        )


def on_the_public_web(site):
    """The demo site as a newsroom runs it: https on a domain (the demo is 127.0.0.1)."""
    cfg = site / "config.toml"
    text = cfg.read_text("utf-8")
    assert "http://127.0.0.1:8000/" in text
    cfg.write_text(text.replace("http://127.0.0.1:8000/", "https://news.example.com/"), "utf-8")


def test_a_full_digest_stays_under_gmail_clipping_and_passes_the_checks(site):
    on_the_public_web(site)
    write_articles(site, 30)
    config = configuration.load(site / "config.toml")
    subscribe(config, "reader@example.com")
    report = pipeline.run(config, pipeline.Options())
    assert report.digest_articles == 20 and report.delivery.sent == 1
    [msg] = messages(site)
    html = msg.get_body(("html",)).get_content()
    assert len(html.encode("utf-8")) < GMAIL_CLIP_BYTES
    assert "19 more stories on the site" in html  # 39 articles, 20 shown
    assert html.count('class="story"') == 20
    box = mailbox.Maildir(site / "outbox", create=False)
    raw = box.get_bytes(box.keys()[0]).replace(b"\n", b"\r\n")
    shown = [t for t in re.findall(r"<h3[^>]*><a [^>]*>([^<]+)</a>", html)]
    text = msg.get_body(("plain",)).get_content()
    assert all(t in text for t in shown)
    assert "서울" in html and "서울" in text  # Korean survives the encoding
    assert all(c.ok for c in check_message(raw, [], [])), check_message(raw, [], [])


def test_responsive_and_dark_mode_rules_stay_flat_in_a_style_block(site):
    css = (ROOT / "templates" / "digest.css").read_text(encoding="utf-8")
    depth, deepest = 0, 0
    for ch in re.sub(r"/\*.*?\*/", "", css, flags=re.S):
        depth += ch == "{"
        depth -= ch == "}"
        deepest = max(deepest, depth)
    assert deepest == 2, "nested @media rules break premailer 3.10 (premailer#290)"
    config = configuration.load(site / "config.toml")
    selection = digests.select(_articles(config), 20)
    rendered = digests.render(config, selection, "2026-01-10", NOW)
    uncommented = re.sub(r"<!--.*?-->", "", rendered.html, flags=re.S)
    styles = re.findall(r"<style[^>]*>(.*?)</style>", uncommented, re.S)
    assert len(styles) == 1
    assert "@media only screen and (max-width: 620px)" in styles[0]
    assert "@media (prefers-color-scheme: dark)" in styles[0]
    container = re.search(r'<table[^>]*class="container"[^>]*>', rendered.html).group(0)
    style = container.replace(" ", "")
    assert "width:100%" in style and "max-width:600px" in style  # fluid, from inlined rules alone
    assert "<h2" in rendered.html and "In this issue" in rendered.html  # the headline list
    # Outlook (Word engine) ignores max-width: a fixed 600 px table only it sees,
    # 96 dpi, exact line heights, no table gaps, a font it has
    mso = "".join(re.findall(r"<!--\[if mso\]>(.*?)<!\[endif\]-->", rendered.html, re.S))
    assert re.search(r'<table role="presentation" align="center" width="600"', mso)
    assert "<o:PixelsPerInch>96</o:PixelsPerInch>" in mso and "Malgun Gothic" in mso
    assert re.search(r"td, h1, h2, h3, p, li, a, span \{ mso-line-height-rule: exactly; \}", mso)
    tables = re.findall(r"<table\b[^>]*>", uncommented)
    assert all("mso-table-lspace:0" in t and "mso-table-rspace:0" in t for t in tables)
    # spacing between stories sits on table cells (Outlook drops div padding)
    assert re.search(r'<td class="story" style="[^"]*padding:', rendered.html)
    assert '<div class="story"' not in rendered.html


def _articles(config):
    pipeline.run(config, pipeline.Options(), [pipeline.Step.COLLECT])
    store = Store.open(config.store_url)
    try:
        return store.articles.not_yet_in_digest(datetime.now(UTC))
    finally:
        store.close()


def test_premailer_never_fetches_a_url():
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"p { color: red }")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        html = (
            f'<html><head><link rel="stylesheet" href="{url}/a.css"><style>@import url({url}/b.css);'
            f' p {{ margin: 0 }}</style></head><body><p style="background: url({url}/c.png)">x</p>'
            f'<img src="{url}/d.png"></body></html>'
        )
        out = digests.inline_css(html)
    finally:
        server.shutdown()
    assert hits == []
    assert "margin:0" in out.replace(" ", "")


def test_inlining_the_stylesheet_leaves_requests_unimported_until_something_uses_it():
    """premailer imports requests (to fetch stylesheets, which the digest never does):
    a run that renders a digest does not pay for importing it; whoever uses it gets the
    real module."""
    code = (
        "import sys\n"
        "from publisher import digest\n"
        "out = digest.inline_css('<html><head><style>p { margin: 0 }</style></head><body><p>x</p></body></html>')\n"
        "assert 'margin:0' in out.replace(' ', ''), out\n"
        "assert 'requests' not in sys.modules, 'requests was imported'\n"
        "import premailer.premailer\n"
        "import requests\n"
        "assert premailer.premailer.requests.get is requests.get\n"
        "assert sys.modules['requests'] is requests and requests.Session\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_correction_is_marked_updated_and_never_sent_as_new(site):
    config = configuration.load(site / "config.toml")
    subscribe(config, "reader@example.com")
    pipeline.run(config, pipeline.Options())
    correct_the_seed(site)
    report = pipeline.run(config, pipeline.Options())
    assert report.digest is None and report.delivery.sent == 0  # a correction alone sends nothing
    write_articles(site, 1)
    report = pipeline.run(config, pipeline.Options())
    assert report.delivery.sent == 1
    sent = messages(site)
    assert len(sent) == 2
    [second] = [m for m in sent if "Story number 0" in m.get_body(("html",)).get_content()]
    html = second.get_body(("html",)).get_content()
    text = second.get_body(("plain",)).get_content()
    assert "Updated since our last digest" in html and "[Updated] OpenAI to open office in Seoul" in text
    assert html.count("OpenAI to open office in Seoul") == 1  # not in the headline list, not as new
    assert "Story number 0" in html
    report = pipeline.run(config, pipeline.Options())
    assert report.digest is None and len(messages(site)) == 2  # the correction went out once


def test_personalised_copies_equal_a_full_render_for_each_recipient(site):
    config = configuration.load(site / "config.toml")
    selection = digests.select(_articles(config), 20)
    shared = digests.render(config, selection, "2026-01-10", NOW)
    common = dict(
        sender=config.digest.from_, subject=shared.subject, date=NOW, list_id="Daily <digest.example.com>"
    )
    template = MessageTemplate.build(html_body=shared.html, text_body=shared.text, **common)
    for email, name in [
        ("reader@example.com", ""),
        ("o'brien+news@example.com", "Seán O'Brien"),
        ("minji@example.kr", "김민지"),
    ]:
        url = f"https://news.example.com/unsubscribe/tok-{len(email)}.x_y?a=1&b=2"
        to = Recipient(email, name, url, "mailto:digest@example.com?subject=unsubscribe", f"<{len(email)}@x>")
        full = digests.render(config, selection, "2026-01-10", NOW, unsubscribe_url=url, recipient=email)
        reference = MessageTemplate.build(html_body=full.html, text_body=full.text, **common).personalise(to)
        assert template.personalise(to) == reference


def set_option(site, key, value):
    """Set ``key = value`` in the site's config.toml (the key is there already)."""
    cfg = site / "config.toml"
    text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", cfg.read_text(encoding="utf-8"))
    assert count == 1, key
    cfg.write_text(text, encoding="utf-8")


@pytest.mark.slow
def test_dry_run_reports_the_editors_checks(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    # the demo runs on http://127.0.0.1:8000/: fine to try, not to send to readers
    report = json.loads(run_publish(site, "now", "--dry-run", "--json").stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert {n: c["ok"] for n, c in checks.items()} == {
        "html size": True,
        "text part": True,
        "unsubscribe": False,
        "message ids": False,
    }
    assert "http, not https" in checks["unsubscribe"]["detail"]
    assert "Message-ID" in checks["message ids"]["detail"] and "List-Id" in checks["message ids"]["detail"]
    on_the_public_web(site)
    report = json.loads(run_publish(site, "now", "--dry-run", "--json").stdout)
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    run_publish(site, "collect")
    out = run_publish(site, "digest", "--preview", str(site / "p.html")).stdout
    assert "check ok   html size" in out and "check ok   unsubscribe" in out
    assert f"preview written to {site / 'p.html'}" in out and (site / "p.html").is_file()


def test_preview_with_nothing_new_says_so_and_writes_nothing(site, run_publish):
    run_publish(site, "subscribers", "add", "reader@example.com")
    run_publish(site, "now")
    out = run_publish(site, "digest", "--preview", str(site / "p.html")).stdout
    assert "nothing new" in out and "preview written" not in out
    assert not (site / "p.html").exists()


def html_bytes_as_sent(raw: bytes) -> tuple[int, str, str]:
    """(bytes of the HTML part's content on the wire, its transfer encoding, the
    HTML a client shows when it keeps only the first GMAIL_CLIP_BYTES of them)."""
    part = BytesParser(policy=policy.default).parsebytes(raw).get_body(("html",))
    wire = part.get_payload().encode("ascii")
    encoding = part["Content-Transfer-Encoding"]
    kept = wire[:GMAIL_CLIP_BYTES]
    if encoding == "base64":
        import base64

        lines = kept.split(b"\r\n")
        decoded = base64.b64decode(b"".join(line for line in lines if len(line) % 4 == 0))
    else:
        import quopri

        decoded = quopri.decodestring(kept)
    return len(wire), encoding, decoded.decode("utf-8", "replace")


def test_a_50_article_korean_digest_is_measured_as_sent_and_sent_base64(site, run_publish):
    write_articles(site, 50, words=KOREAN, length=150)
    set_option(site, "max_articles", "50")
    run_publish(site, "subscribers", "add", "reader@example.com")
    report = json.loads(run_publish(site, "now", "--dry-run", "--json").stdout)
    [size] = [c["detail"] for c in report["checks"] if c["name"] == "html size"]
    run_publish(site, "now")
    box = mailbox.Maildir(site / "outbox", create=False)
    [key] = box.keys()
    raw = box.get_bytes(key).replace(b"\n", b"\r\n")
    wire, encoding, _ = html_bytes_as_sent(raw)
    assert encoding == "base64"  # quoted-printable would spend 9 bytes per Hangul syllable
    reported = float(re.match(r"([\d.]+) KB as sent \(base64\)", size).group(1))
    assert abs(reported - wire / 1024) < 0.5, (size, wire)  # the dry run measured what was sent
    html = BytesParser(policy=policy.default).parsebytes(raw).get_body(("html",)).get_content()
    qp = len(quopri.encodestring(html.encode("utf-8")))
    # Hangul slugs are percent-encoded ASCII in every link, so the saving is less than 9:4 per
    # character, but it is what keeps this digest under Gmail's clip: quoted-printable would not.
    assert wire < 102 * 1024 < qp, (wire, qp)
    # With the Korean interface and percent-encoded Hangul links, 42 of the 50 fit as sent (fewer
    # with quoted-printable); the rest go to "N more on the site", never past the clip.
    assert html.count('class="story"') >= 40


def test_an_80_article_digest_keeps_its_unsubscribe_link_before_the_clip(site, run_publish):
    write_articles(site, 80)
    set_option(site, "max_articles", "80")
    run_publish(site, "subscribers", "add", "reader@example.com")
    dry = json.loads(run_publish(site, "now", "--dry-run", "--json").stdout)
    assert all(c["ok"] for c in dry["checks"] if c["name"] == "html size"), dry["checks"]
    result = run_publish(site, "now")
    box = mailbox.Maildir(site / "outbox", create=False)
    [key] = box.keys()
    raw = box.get_bytes(key).replace(b"\n", b"\r\n")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    unsubscribe = next(u.strip(" <>") for u in str(msg["List-Unsubscribe"]).split(",") if "http" in u)
    wire, _, kept = html_bytes_as_sent(raw)
    assert wire <= GMAIL_CLIP_BYTES
    assert unsubscribe.replace("&", "&amp;") in kept  # the footer is inside what Gmail shows
    shown = kept.count('class="story"')
    assert 20 < shown < 80
    total = dry["collect"]["new"]  # the demo's own seeds count too
    more = re.search(r"(\d+) more stories on the site", kept)
    assert more and int(more.group(1)) == total - shown, (shown, more)
    assert f"{shown} articles" in result.stdout
    assert "fit under Gmail" in result.stderr


def sample_message(
    html, text, *, list_id="D <d.example.com>", url="https://e.com/u/t", message_id="<1@e.com>"
):
    template = MessageTemplate.build(
        sender="D <d@example.com>", subject="s", date=NOW, list_id=list_id, html_body=html, text_body=text
    )
    return template.personalise(Recipient("r@example.com", "", url, "mailto:d@example.com", message_id))


def test_checks_catch_a_clipped_html_part_and_a_text_part_without_articles():
    message = sample_message(
        "<p>" + "x" * GMAIL_CLIP_BYTES + '</p><a href="@@UNSUBSCRIBE_URL@@">u</a>',
        "Nothing here\n@@UNSUBSCRIBE_URL@@\n",
    )
    result = {c.name: c.ok for c in check_message(message, ["A title"], ["https://e.com/a"])}
    assert result == {"html size": False, "text part": False, "unsubscribe": True, "message ids": True}
    part = BytesParser(policy=policy.default).parsebytes(message).get_body(("html",))
    assert sent_bytes(part) > GMAIL_CLIP_BYTES


def test_checks_catch_an_http_unsubscribe_link_and_ids_on_an_ip_address():
    message = sample_message(
        '<a href="@@UNSUBSCRIBE_URL@@">u</a>',
        "@@UNSUBSCRIBE_URL@@\n",
        list_id="D <digest.192.168.1.20>",
        url="http://e.com/u/t",
        message_id="<1.x@[10.0.0.1]>",
    )
    checks = {c.name: c for c in check_message(message, [], [])}
    assert not checks["unsubscribe"].ok and "http, not https" in checks["unsubscribe"].detail
    assert not checks["message ids"].ok
    assert "Message-ID" in checks["message ids"].detail and "List-Id" in checks["message ids"].detail


def test_dkim_signature_covers_the_unsubscribe_headers_and_verifies(site, dkim_key):
    import base64

    key_file, public = dkim_key
    edit_config(
        site,
        'maildir = "outbox"\n',
        f'maildir = "outbox"\ndkim_selector = "mail2026"\ndkim_domain = "news.example.com"\n'
        f'dkim_key_file = "{key_file}"\n',
    )
    config = configuration.load(site / "config.toml")
    subscribe(config, "reader@example.com")
    pipeline.run(config, pipeline.Options())
    box = mailbox.Maildir(site / "outbox", create=False)
    raw = box.get_bytes(box.keys()[0]).replace(b"\n", b"\r\n")
    signature = BytesParser(policy=policy.default).parsebytes(raw)["DKIM-Signature"]
    tags = dict(t.strip().split("=", 1) for t in str(signature).split(";") if "=" in t)
    signed = {h.strip().lower() for h in tags["h"].split(":")}
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post", "message-id"} <= signed
    assert tags["d"] == "news.example.com" and tags["s"] == "mail2026"
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name, timeout=5):
        return record if name == b"mail2026._domainkey.news.example.com." else None

    assert dkim.verify(raw, dnsfunc=dns)
    tampered = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x")
    assert not dkim.verify(tampered, dnsfunc=dns)


@pytest.mark.parametrize(
    "settings, said",
    [
        ('dkim_selector = "s"\n', ("delivery.dkim_domain", "config.toml")),
        (
            'dkim_selector = "s"\ndkim_domain = "example.com"\ndkim_key_file = "nope.pem"\n',
            ("delivery.dkim_key_file: no such file", "nope.pem"),
        ),
    ],
    ids=["partial settings", "missing key file"],
)
def test_incomplete_dkim_settings_are_a_config_error(site, run_publish, settings, said):
    edit_config(site, 'maildir = "outbox"\n', 'maildir = "outbox"\n' + settings)
    result = run_publish(site, "now", check=False)
    assert result.returncode == 2
    assert all(part in result.stderr for part in said), result.stderr


def test_the_text_part_is_wrapped_with_urls_alone_and_a_signature_separator(site):
    write_articles(site, 3, words=KOREAN)
    write_articles(site, 3, start=10)
    config = configuration.load(site / "config.toml")
    subscribe(config, "reader@example.com")
    pipeline.run(config, pipeline.Options())
    [msg] = messages(site)
    from publisher.plaintext import columns

    lines = msg.get_body(("plain",)).get_content().splitlines()
    long_lines = [line for line in lines if columns(line) > 76]
    assert all(len(line.split()) == 1 for line in long_lines), long_lines  # only unbreakable words
    urls = [line for line in lines if "https://" in line or "http://" in line]
    assert urls and all(line.startswith("http") and " " not in line for line in urls), urls
    assert "-- " in lines and lines.index("-- ") > len(lines) - 12  # the signature separator
    assert "reader@example.com" in lines  # the personal field on a line of its own
    assert max(columns(line) for line in lines if " " in line) >= 60  # wrapped, not chopped


def test_the_view_in_browser_copy_has_no_personal_footer_nor_unsubscribe_link(site):
    config = configuration.load(site / "config.toml")
    subscribe(config, "reader@example.com")
    report = pipeline.run(config, pipeline.Options())
    page = (site / "public" / "digests" / f"{report.digest}.html").read_text(encoding="utf-8")
    [msg] = messages(site)
    mail_html = msg.get_body(("html",)).get_content()
    assert "You receive this digest because" in mail_html and "Unsubscribe" in mail_html
    assert "You receive this digest because" not in page and "subscribers subscribed" not in page
    assert "Unsubscribe" not in page and "View in browser" not in page
    assert 'href="http://127.0.0.1:8000/"' not in page.split('class="footer"', 1)[1]
    assert "OpenAI to open office in Seoul" in page and "Sangam-dong" in page  # the rest stays
