"""publish deliverability: mailbox providers by domain and by MX (looked up on a loopback
DNS server and kept in the store), RFC 3463 meanings, and the gate that pauses a
provider whose policy refusals pass deliverability.pause_rate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.deliverability.gate import ProviderGate
from publisher.deliverability.providers import Providers, by_mx
from publisher.delivery.replies import is_policy, meaning, reply_status
from publisher.feedback import Event, event_key, record
from publisher.store import Store
from tests.dnsserver import Zone, dns_server
from tests.hostile_smtp import HostileSmtp, Script
from tests.mailserver import add_subscribers, ledger_state, smtp_site
from tests.pg import use_store
from tests.sites import publish


@pytest.mark.parametrize(
    ("host", "provider"),
    [
        ("alt1.aspmx.l.google.com", "gmail"),
        ("smtp.google.com", "gmail"),
        ("newsroom-co-kr.mail.protection.outlook.com", "outlook"),
        ("hotmail-com.olc.protection.outlook.com", "outlook"),
        ("mta7.am0.yahoodns.net", "yahoo"),
        ("mx-aol.mail.gm0.yahoodns.net", "yahoo"),
        ("mx01.mail.icloud.com", "icloud"),
        ("mx1.naver.com", "naver"),
        ("mx2.hanmail.net", "daum"),
        ("mx.notgoogle.com", "other"),
        ("google.com.evil.example", "other"),
    ],
)
def test_mx_hosts_name_their_provider(host: str, provider: str) -> None:
    assert by_mx([host]).key == provider


def test_addresses_by_domain_then_by_mx() -> None:
    asked: list[str] = []

    def mx(domain: str) -> list[str] | None:
        asked.append(domain)
        return {"newsroom.co.kr": ["aspmx.l.google.com"], "corp.example": ["mx.corp.example"]}.get(domain)

    providers = Providers(mx)
    assert providers.of("Kim@Gmail.com").label == "Gmail"
    assert providers.of("lee@hanmail.net").label == "Daum/Kakao"
    assert providers.of("park@naver.com").label == "Naver"
    assert providers.of("a@me.com").label == "Apple iCloud"
    assert providers.of("b@aol.com").label == "Yahoo/AOL"
    assert providers.of("c@live.com").label == "Outlook/Hotmail"
    assert providers.of("editor@newsroom.co.kr").label == "Gmail"  # Google Workspace
    assert providers.of("x@corp.example").key == "other"
    assert providers.of("y@unknown.example").key == "other"
    providers.of("again@newsroom.co.kr")
    assert asked == ["newsroom.co.kr", "corp.example", "unknown.example"]  # known domains need no lookup


def test_reply_meanings_come_from_rfc_3463() -> None:
    assert meaning(550, "5.1.1") == "bad destination mailbox address"
    assert meaning(550, "5.7.26") == "multiple authentication checks failed (DMARC)"
    assert meaning(421, "4.7.28") == "temporary: mail flood detected: unusual rate of unsolicited mail"
    assert meaning(550, "5.7.515").startswith("Microsoft: sending domain does not meet")
    assert meaning(552, "5.2.99") == "mailbox status"
    assert meaning(554, "") == "transaction failed"
    assert meaning(None, "") == "unknown reply"
    assert is_policy("4.7.1") and is_policy("5.7.26") and not is_policy("5.1.1") and not is_policy("")
    assert reply_status("550 5.7.1 go away") == "5.7.1"
    assert reply_status("421-4.7.28 unusual rate") == "4.7.28"
    assert reply_status("550 no code") == ""


def test_the_gate_pauses_a_provider_past_its_policy_rate() -> None:
    gate = ProviderGate(Providers({}), rate=0.25, after=2)
    for n in range(7):
        assert gate.observe(f"r{n}@gmail.com") == ""
    assert gate.observe("a@gmail.com", "421 4.7.28 unusual rate") == ""  # 1 refusal: below pause_after
    assert gate.observe("b@gmail.com", "421 4.7.28 unusual rate") == ""  # 2 of 9: below 25 %
    line = gate.observe("c@gmail.com", "450 4.7.1 slow down")  # 3 of 10 = 30 %
    assert line == (
        "sending to Gmail paused for this run: 3 of 10 tried refused for policy (4.7.x/5.7.x, at least 25%), "
        "last: 450 4.7.1 slow down; its deliveries stay queued"
    )
    assert gate.paused("d@googlemail.com") == line and gate.paused("e@naver.com") == ""
    assert gate.observe("f@naver.com", "450 4.7.1 slow down") == ""  # 1 refusal: below pause_after
    assert gate.pauses() == [line]


def test_a_refusal_of_the_message_pauses_its_provider_or_domain_at_once() -> None:
    gate = ProviderGate(Providers({}), rate=0.1, after=3)
    for n in range(50):
        gate.observe(f"r{n}@corp.example")
    line = gate.observe("a@corp.example", "554 5.7.1 Message rejected as spam", at_once=True)
    assert (
        line
        == "sending to corp.example paused for this run: 554 5.7.1 Message rejected as spam; its deliveries stay queued"
    )
    assert gate.paused("b@corp.example") == line
    assert gate.paused("c@other.example") == ""  # another company's server: not paused with it
    assert gate.observe("d@naver.com", "550 5.7.1 spam", at_once=True).startswith("sending to Naver paused")


@pytest.mark.slow
def test_the_report_counts_each_provider_from_deliveries_and_feedback(site: Path) -> None:
    report_counts_each_provider(site, f"sqlite:///{site / 'publisher.db'}")


@pytest.mark.slow
def test_the_report_on_postgresql(site: Path, pg_url: str) -> None:
    use_store(site, pg_url)
    report_counts_each_provider(site, pg_url)


def report_counts_each_provider(site: Path, url: str) -> None:
    readers = [
        "a@gmail.com",
        "b@gmail.com",
        "c@googlemail.com",
        "editor@newsroom.co.kr",  # Google Workspace, by its MX
        "d@hotmail.com",
        "e@naver.com",
        "f@hanmail.net",
        "g@corp.example",  # an MX of its own: other
        "h@nomx.example",  # no MX at all: other
    ]
    (site / "readers.csv").write_text("email,name\n" + "".join(f"{r},\n" for r in readers))
    publish(site, "subscribers", "import", str(site / "readers.csv"))
    publish(site, "now")
    store = Store.open(url)
    issue = store.health.last_issues(1)[0].id
    now = datetime.now(UTC)

    def ev(kind: str, address: str, status: str = "", issue_id: int | None = issue) -> Event:
        return Event(kind, event_key(kind, address), "dsn", now, address, issue_id, None, status, "")

    record(
        store,
        [
            ev("hard_bounce", "b@gmail.com", "5.1.1"),
            ev("complaint", "a@gmail.com", issue_id=None),  # no issue named: matched by address
            ev("policy", "d@hotmail.com", "5.7.515"),
            ev("delayed", "e@naver.com", "4.2.2"),
        ],
    )
    store.close()
    zone = Zone().mx("newsroom.co.kr", "aspmx.l.google.com").mx("corp.example", "mx.corp.example")
    with dns_server(zone) as server:
        with (site / "config.toml").open("a") as config:
            config.write(f'\n[dns]\nresolver = "{server}"\ntimeout = 2\n')
        data = json.loads(publish(site, "deliverability", "--json").stdout)
        looked_up = sorted(name for name, kind in zone.queries if kind == "MX")
        text = publish(site, "deliverability").stdout
        again = sorted(name for name, kind in zone.queries if kind == "MX")
    assert looked_up == ["corp.example.", "newsroom.co.kr.", "nomx.example."]  # gmail.com & co need none
    assert again == looked_up  # kept in the store: the second report asks nothing
    by = {p["provider"]: p for p in data["providers"]}
    assert list(by) == ["gmail", "outlook", "naver", "daum", "other"]
    gmail = by["gmail"]
    assert (gmail["deliveries"], gmail["sent"], gmail["bounced"], gmail["complained"]) == (4, 4, 1, 1)
    assert gmail["rates"]["complained"] == 0.25
    assert gmail["replies"] == [
        {"code": None, "status": "5.1.1", "count": 1, "meaning": "bad destination mailbox address"}
    ]
    assert (by["outlook"]["policy"], by["naver"]["deferred"], by["other"]["deliveries"]) == (1, 1, 2)
    assert "Gmail: 4 deliveries, 4 sent, 0 deferred (0%), 1 bounced (25%), 1 complained (25% of sent)" in text
    assert "over the 0.3% complaint rate bulk senders must stay under" in text
    assert "  Outlook/Hotmail replies: 5.7.515 ×1 (Microsoft: sending domain does not meet" in text
    status = publish(site, "status").stdout
    assert "Gmail: 4 deliveries" in status
    as_json = json.loads(publish(site, "status", "--json").stdout)["deliverability"]
    assert [p["provider"] for p in as_json["providers"]] == list(by)


def test_a_run_pauses_the_provider_that_refuses_and_keeps_sending_to_the_rest(site: Path) -> None:
    """Gmail refuses the message for DMARC (5.7.26): Gmail is paused at once; Outlook
    defers for policy (4.7.1) until 3 of its tries are refused (deliverability.pause_after):
    paused too; Naver gets its mail. The paused ones stay queued, the run says so, and
    publish deliverability shows each provider's replies from the ledger."""
    gmail = [f"g{n}@gmail.com" for n in range(4)]
    outlook = [f"h{n}@hotmail.com" for n in range(5)]
    naver = [f"n{n}@naver.com" for n in range(3)]
    data = {
        a: "550 5.7.26 Unauthenticated email from news.example.com is not accepted due to DMARC"
        for a in gmail
    }
    rcpt = {a: "450 4.7.1 Rate limited, try again later" for a in outlook}
    with HostileSmtp(
        Script(rcpt={**rcpt, "*": "250 2.1.5 OK"}, data={**data, "*": "250 2.0.0 queued"})
    ) as server:
        config = smtp_site(site, server.port)
        add_subscribers(config, gmail + outlook + naver)
        result = publish(site, "now", check=False)
        delivered = {r for _, r, _ in server.script.received}
    assert delivered == set(naver)
    assert result.returncode == 0, result.stderr  # mail went out: the run did its work
    out = result.stdout.splitlines()
    assert any(
        line.startswith("sending to Gmail paused for this run: ") and "550 5.7.26" in line for line in out
    ), result.stdout
    assert any(
        line.startswith("sending to Outlook/Hotmail paused for this run: 3 of 3 tried refused for policy")
        for line in out
    ), result.stdout
    counts, statuses = ledger_state(config)
    assert counts == {"sent": 3, "queued": 9}
    assert set(statuses.values()) == {"active"}  # nobody's address was blamed
    report = json.loads(publish(site, "deliverability", "--json").stdout)
    by = {p["provider"]: p for p in report["providers"]}
    refused = by["gmail"]["policy"]  # the first refusal, and one more in flight beside it at most
    assert by["gmail"]["queued"] == 4 and refused in (1, 2)
    dmarc = "multiple authentication checks failed (DMARC)"
    assert by["gmail"]["replies"] == [{"code": 550, "status": "5.7.26", "count": refused, "meaning": dmarc}]
    assert by["outlook"]["deferred"] == by["outlook"]["policy"] and by["outlook"]["policy"] in (3, 4)
    assert by["outlook"]["replies"][0]["status"] == "4.7.1"
    assert (by["naver"]["sent"], by["naver"]["policy"]) == (3, 0)


def test_a_providers_line_writes_every_count_the_same_way() -> None:
    from publisher.deliverability import ProviderHealth
    from publisher.deliverability.providers import OTHER

    health = ProviderHealth(OTHER.key, OTHER.label)
    health.count_status("sent", 2990)
    health.count_status("queued", 1200)
    health.deferred, health.bounced = 1500, 10
    line = health.line()
    assert line.startswith(
        "other mail servers: 4,190 deliveries, 2,990 sent, 1,500 deferred (35.8%), 10 bounced"
    )
    assert line.endswith(", 1,200 queued")
