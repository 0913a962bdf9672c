"""``publish doctor`` against a DNS server on loopback (tests/dnsserver.py): SPF,
DKIM, DMARC (RFC 9989), MX, the unsubscribe URL and the return path, one line each,
exit 1 when something must be fixed."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from publisher.doctor import dmarc, spf
from publisher.resolver import Resolver
from tests.dnsserver import Zone, dns_server
from tests.sites import publish

RELAY_IP = "93.184.215.14"


def _key(path: Path) -> str:
    """Write a new RSA key to ``path``; return the base64 public key for its DNS record."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def _good_zone(public_key: str) -> Zone:
    return (
        Zone()
        .txt("news.example.com", "v=spf1 include:_spf.relay.example.net -all")
        .txt("_spf.relay.example.net", f"v=spf1 ip4:{RELAY_IP}/32 ~all")
        .txt("s1._domainkey.news.example.com", f"v=DKIM1; k=rsa; p={public_key}")
        .txt("_dmarc.example.com", "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com")
        .a("example.com", "93.184.215.20")
        .mx("news.example.com", "mx.news.example.com")
        .a("mx.news.example.com", "93.184.215.30")
        .a("smtp.relay.example.net", RELAY_IP)
    )


def _configure(
    site: Path,
    resolver: str,
    *,
    base_url: str = "https://news.example.com/",
    extra: str = "",
    return_path: str = "",
) -> None:
    config = site / "config.toml"
    text = config.read_text().replace('base_url = "http://127.0.0.1:8000/"', f'base_url = "{base_url}"')
    text = text.replace(
        'transport = "maildir"\nmaildir = "outbox"',
        'transport = "smtp"\ndkim_selector = "s1"\ndkim_domain = "news.example.com"\n'
        f'dkim_key_file = "dkim.pem"\nreturn_path = "{return_path}"\n\n[delivery.smtp]\nhost = "smtp.relay.example.net"',
    )
    config.write_text(text + f'\n[dns]\nresolver = "{resolver}"\ntimeout = 2\n' + extra)


def test_a_well_configured_sender_passes_every_check(site: Path) -> None:
    zone = _good_zone(_key(site / "dkim.pem"))
    with dns_server(zone) as server:
        _configure(site, server, return_path="bounces@news.example.com")
        result = publish(site, "doctor")
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("FIX")], result.stdout
    assert f"ok   spf: smtp.relay.example.net ({RELAY_IP}) may send for news.example.com" in result.stdout
    assert "ok   dkim: s1._domainkey.news.example.com publishes the 2048-bit key" in result.stdout
    assert "ok   dmarc: _dmarc.example.com: p=quarantine, rua=mailto:dmarc@example.com" in result.stdout
    # The record at example.com makes it the organisational domain: DKIM's news.example.com aligns.
    assert "ok   alignment: DKIM and SPF align with the From domain news.example.com" in result.stdout
    assert "ok   mx: news.example.com receives mail at mx.news.example.com" in result.stdout
    assert "ok   unsubscribe: unsubscribe links are https on news.example.com" in result.stdout
    assert "ok   return-path: news.example.com receives mail at mx.news.example.com" in result.stdout
    assert lines[-1] == "0 to fix, 0 to look at"
    assert result.returncode == 0


def test_each_problem_is_one_fix_line_and_exit_1(site: Path) -> None:
    _key(site / "dkim.pem")  # the key published below is another one
    zone = (
        Zone()
        .txt("news.example.com", f"v=spf1 ip4:{RELAY_IP} ~all")
        .txt("news.example.com", "v=spf1 -all")
        .txt("s1._domainkey.news.example.com", f"v=DKIM1; k=rsa; p={_key(site / 'other.pem')}")
        .txt("_dmarc.news.example.com", "v=DMARC1; p=maybe; rua=dmarc-reports; pct=50; p=reject")
        .a("smtp.relay.example.net", RELAY_IP)
    )
    with dns_server(zone) as server:
        _configure(site, server, base_url="http://news.example.com/")
        result = publish(site, "doctor", check=False)
        as_json = json.loads(publish(site, "doctor", "--json", check=False).stdout)
    out = result.stdout
    assert result.returncode == 1, out
    assert "FIX  spf: news.example.com publishes 2 SPF records: merge them into one" in out
    assert "FIX  dkim: the key at s1._domainkey.news.example.com does not match delivery.dkim_key_file" in out
    assert "FIX  dmarc: _dmarc.news.example.com: p=maybe must be one of none, quarantine, reject" in out
    assert "FIX  dmarc: _dmarc.news.example.com: p= is given twice" in out
    assert "FIX  dmarc: _dmarc.news.example.com: rua= holds 'dmarc-reports', which is not a URI" in out
    assert "warn dmarc: _dmarc.news.example.com: pct= was removed in RFC 9989: receivers ignore it" in out
    assert "FIX  mx: news.example.com has no MX record and no address" in out
    assert (
        "FIX  unsubscribe: site.base_url is http://news.example.com/: one-click unsubscribe links must be https"
        in out
    )
    assert "publish: " in result.stderr and "to fix before bulk sending" in result.stderr
    assert "Traceback" not in result.stderr
    assert all(len(line) < 300 for line in out.splitlines())
    assert {f["check"] for f in as_json if f["level"] == "fix"} >= {
        "spf",
        "dkim",
        "dmarc",
        "mx",
        "unsubscribe",
    }


def test_missing_records_say_what_to_publish(site: Path) -> None:
    _key(site / "dkim.pem")
    zone = Zone().a("smtp.relay.example.net", RELAY_IP).mx("news.example.com", ".", 0)
    with dns_server(zone) as server:
        _configure(site, server)
        out = publish(site, "doctor", check=False).stdout
    assert "FIX  spf: news.example.com publishes no SPF record" in out
    assert "FIX  dkim: no DKIM key published at s1._domainkey.news.example.com" in out
    assert "FIX  dmarc: no DMARC record for news.example.com: publish _dmarc.news.example.com TXT" in out
    assert "FIX  mx: news.example.com publishes a null MX (accepts no mail)" in out
    assert "warn return-path: delivery.return_path is unset: bounces go to the From address" in out


def test_a_relay_the_spf_record_does_not_name_must_be_fixed(site: Path) -> None:
    zone = _good_zone(_key(site / "dkim.pem"))
    zone.records.pop("_spf.relay.example.net.")
    zone.txt("_spf.relay.example.net", "v=spf1 ip4:93.184.216.0/24 -all")
    zone.txt("bounces.example.org", f"v=spf1 ip4:{RELAY_IP} -all")
    original = (site / "config.toml").read_text()
    with dns_server(zone) as server:
        _configure(site, server)
        out = publish(site, "doctor", check=False).stdout
        (site / "config.toml").write_text(original)
        _configure(site, server, return_path="bounces@bounces.example.org")
        other = publish(site, "doctor", check=False).stdout
    assert (
        f"FIX  spf: smtp.relay.example.net ({RELAY_IP}) is not allowed to send for news.example.com (SPF fail)"
        in out
    )
    # A return path in another organisation: SPF checks its domain (it passes) but does
    # not align; DKIM still does; no MX there loses the bounces.
    assert f"ok   spf: smtp.relay.example.net ({RELAY_IP}) may send for bounces.example.org" in other
    assert "ok   alignment: DKIM aligns with the From domain news.example.com" in other
    assert "FIX  return-path: bounces.example.org has no MX record and no address: bounces are lost" in other


def test_an_unreachable_resolver_is_one_line_per_check(site: Path) -> None:
    _key(site / "dkim.pem")
    _configure(site, "127.0.0.1:9")
    result = publish(site, "doctor", check=False)
    assert result.returncode == 1
    assert (
        "FIX  spf: could not be checked: DNS: TXT news.example.com: no answer from 127.0.0.1:9 in time"
        in (result.stdout)
    )
    assert "Traceback" not in result.stderr


def test_a_bad_resolver_setting_is_a_configuration_error(site: Path) -> None:
    _configure(site, "dns.example.com:53")
    result = publish(site, "doctor", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "dns.resolver: must be an IP address with an optional port, such as \"127.0.0.1:5353\", not 'dns.example.com:53'"
    )


@pytest.fixture(scope="module")
def spf_zone():
    zone = (
        Zone()
        .txt("example.org", "v=spf1 mx a:out.example.org ip6:2001:db8::/32 redirect=_spf.example.org")
        .mx("example.org", "mx1.example.org")
        .a("mx1.example.org", "93.184.1.1")
        .a("out.example.org", "93.184.1.2")
        .txt("_spf.example.org", "v=spf1 exists:%{i}.allow.example.org -all")
        .a("93.184.1.3.allow.example.org", "127.0.0.2")
        .txt("loop.example.org", "v=spf1 include:loop.example.org -all")
        .txt("soft.example.org", "v=spf1 ip4:10.0.0.0/8 ?include:example.org ~all")
        .txt("syntax.example.org", "v=spf1 ip4:300.1.1.1 -all")
    )
    with dns_server(zone) as server:
        yield Resolver(server, 2)


@pytest.mark.parametrize(
    ("ip", "domain", "expected"),
    [
        ("93.184.1.1", "example.org", "pass"),  # mx
        ("93.184.1.2", "example.org", "pass"),  # a:out.example.org
        ("2001:db8::25", "example.org", "pass"),  # ip6 range
        ("93.184.1.3", "example.org", "pass"),  # redirect, then the exists macro
        ("93.184.1.4", "example.org", "fail"),  # redirect's -all
        ("93.184.1.1", "soft.example.org", "neutral"),  # ?include matched
        ("93.184.9.9", "soft.example.org", "softfail"),
        ("93.184.9.9", "loop.example.org", "permerror"),  # more than 10 lookups
        ("93.184.9.9", "syntax.example.org", "permerror"),
        ("93.184.9.9", "nothing.example.org", "none"),
    ],
)
def test_spf_evaluation(spf_zone: Resolver, ip: str, domain: str, expected: str) -> None:
    assert spf.check_host(spf_zone, ip, domain).result == expected


def test_dmarc_syntax_per_rfc_9989() -> None:
    good = dmarc.parse(
        "v=DMARC1; p=reject; sp=quarantine; np=reject; psd=n; t=n; adkim=s; rua=mailto:a@example.com,mailto:b@example.net;"
    )
    assert good.errors == [] and good.warnings == []
    assert (good.p, good.psd, good.rua, good.aligned("dkim"), good.aligned("spf")) == (
        "reject",
        "n",
        ["mailto:a@example.com", "mailto:b@example.net"],
        "s",
        "r",
    )
    old = dmarc.parse("v=DMARC1; p=none; rua=mailto:a@example.com!10m; ri=3600; rf=afrf; foo=bar")
    assert old.errors == []
    assert old.warnings == [
        "rua= 'mailto:a@example.com!10m': the !size suffix was removed in RFC 9989",
        "ri= was removed in RFC 9989: receivers ignore it",
        "rf= was removed in RFC 9989: receivers ignore it",
        "unknown tag foo= (ignored)",
    ]
    assert dmarc.parse("p=none; v=DMARC1").errors == ["the record must start with v=DMARC1, not 'p=none'"]
    assert dmarc.parse("v=DMARC1; p=none; fo=2; adkim=x").errors == [
        "fo=2 must be 0, 1, d or s, separated by colons",
        "adkim=x must be one of r, s",
    ]
    assert (
        "no p= tag: receivers read it as p=none" in dmarc.parse("v=DMARC1; rua=mailto:a@example.com").warnings
    )


def test_the_tree_walk_finds_the_organisational_domain() -> None:
    zone = (
        Zone()
        .txt("_dmarc.example.com", "v=DMARC1; p=none")
        .txt("_dmarc.gov.example", "v=DMARC1; p=reject; psd=y")
        .txt("_dmarc.deep.corp.example", "v=DMARC1; p=none; psd=n")
        .txt("_dmarc.corp.example", "v=DMARC1; p=none")
    )
    with dns_server(zone) as server:
        r = Resolver(server, 2)
        assert dmarc.organizational_domain(r, "a.b.news.example.com") == "example.com"
        assert dmarc.organizational_domain(r, "mail.agency.gov.example") == "agency.gov.example"
        assert dmarc.organizational_domain(r, "x.deep.corp.example") == "deep.corp.example"
        assert dmarc.organizational_domain(r, "other.example.net") == "other.example.net"
        assert dmarc.aligned(r, "news.example.com", "bounces.example.com", "r")
        assert not dmarc.aligned(r, "news.example.com", "bounces.example.com", "s")
        assert not dmarc.aligned(r, "a.agency.gov.example", "b.other.gov.example", "r")
        assert dmarc.discover(r, "x.y.example.com") == ("example.com", "v=DMARC1; p=none")
        assert dmarc.discover(r, "example.net") is None
