"""Unsubscribe tokens name the subscriber and the newsletter; older tokens still work."""

from __future__ import annotations

from publisher.links import Links
from publisher.tokens import Signer


def test_an_unsubscribe_token_names_the_subscriber_and_the_newsletter():
    signer = Signer("s" * 32)
    token = signer.sign("unsubscribe", "pub1", newsletter="money")
    assert signer.verify_for("unsubscribe", token) == ("pub1", "money", "")
    assert signer.verify("unsubscribe", token) == ("pub1", "")  # who: what every route needs
    public_id, issued, reason = signer.verify_issued("unsubscribe", token)
    assert (public_id, reason) == ("pub1", "") and issued is not None
    assert signer.sign("unsubscribe", "pub1", newsletter="daily") != token


def test_a_token_signed_before_newsletters_names_none():
    signer = Signer("s" * 32)
    old = signer.sign("unsubscribe", "pub1")
    assert signer.verify_for("unsubscribe", old) == ("pub1", None, "")


def test_purposes_do_not_mix():
    signer = Signer("s" * 32)
    preferences = signer.sign("preferences", "pub1")
    assert signer.verify("preferences", preferences) == ("pub1", "")
    assert signer.verify_for("unsubscribe", preferences) == (None, None, "invalid")
    assert signer.verify("preferences", signer.sign("unsubscribe", "pub1", "money"))[0] is None


def test_the_preference_centre_link():
    assert Links("https://news.example/").preferences("T") == "https://news.example/preferences/T"
