"""Signed unsubscribe and confirm tokens: opaque, per purpose, long-lived, rotatable."""

from __future__ import annotations

import base64
import secrets
import time

from itsdangerous import URLSafeTimedSerializer

from publisher.store import Store
from publisher.tokens import Signer, signer_for


def test_a_token_names_no_address_and_serves_one_purpose():
    signer = Signer("secret-1")
    token = signer.sign("unsubscribe", "a1b2c3")
    payload = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    assert payload == b'"a1b2c3"'  # the opaque id only: itsdangerous payloads are readable
    assert signer.verify("unsubscribe", token) == ("a1b2c3", "")
    assert signer.verify("confirm", token) == (None, "invalid")
    assert signer.verify("unsubscribe", token[:-2] + "xx") == (None, "invalid")


def signed_ago(monkeypatch, signer, purpose, seconds):
    with monkeypatch.context() as m:
        now = time.time()
        m.setattr(time, "time", lambda: now - seconds)
        return signer.sign(purpose, "a1b2c3")


def test_old_links_keep_working_after_a_rotation_and_for_a_year(monkeypatch):
    old = Signer("secret-1").sign("unsubscribe", "a1b2c3")
    rotated = Signer("secret-2", previous=["secret-1"])
    assert rotated.verify("unsubscribe", old) == ("a1b2c3", "")
    assert Signer("secret-2").verify("unsubscribe", old) == (None, "invalid")
    a_year_ago = signed_ago(monkeypatch, rotated, "unsubscribe", 366 * 24 * 3600)
    assert rotated.verify("unsubscribe", a_year_ago) == ("a1b2c3", "")
    a_week_ago = signed_ago(monkeypatch, rotated, "confirm", 8 * 24 * 3600)
    assert rotated.verify("confirm", a_week_ago) == (None, "expired")
    three_years_ago = signed_ago(monkeypatch, rotated, "unsubscribe", 3 * 366 * 24 * 3600)
    assert rotated.verify("unsubscribe", three_years_ago) == (None, "expired")


def test_the_secret_comes_from_the_environment_else_once_from_the_store(tmp_path, monkeypatch):
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.delenv("PUB_SECRET", raising=False)
    first = signer_for("PUB_SECRET", store.meta.get_or_create_secret).sign("unsubscribe", "x")
    again = signer_for("PUB_SECRET", store.meta.get_or_create_secret)
    assert again.verify("unsubscribe", first) == ("x", "")  # the same stored secret
    monkeypatch.setenv("PUB_SECRET", "from-env")
    env = signer_for("PUB_SECRET", store.meta.get_or_create_secret)
    assert env.verify("unsubscribe", first) == (None, "invalid")
    assert Signer("from-env").verify("unsubscribe", env.sign("unsubscribe", "x")) == ("x", "")
    store.close()


def test_a_newsletter_unsubscribe_token_names_no_address_and_cannot_be_moved_to_another():
    signer = Signer("secret-1")
    token = signer.sign("unsubscribe", "a1b2c3", newsletter="daily")
    payload = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    assert payload == b'["a1b2c3","daily"]'  # no address
    _, stamp, mac = token.split(".")
    weekly = base64.urlsafe_b64encode(b'["a1b2c3","weekly"]').decode().rstrip("=")
    assert signer.read("unsubscribe", f"{weekly}.{stamp}.{mac}") == (None, "invalid")
    # only unsubscribe tokens name a newsletter
    confirm = URLSafeTimedSerializer("secret-1", salt="publisher.confirm").dumps(["a1b2c3", "daily"])
    assert signer.read("confirm", confirm) == (None, "invalid")


def test_preference_tokens_have_their_own_salt_and_last_two_years(monkeypatch):
    signer = Signer("secret-1")
    token = signer.sign("preferences", "a1b2c3")
    assert signer.verify("preferences", token) == ("a1b2c3", "")
    for other in ("unsubscribe", "confirm"):
        assert signer.verify(other, token) == (None, "invalid")
        assert signer.verify("preferences", signer.sign(other, "a1b2c3")) == (None, "invalid")
    a_year_ago = signed_ago(monkeypatch, signer, "preferences", 366 * 24 * 3600)
    assert signer.verify("preferences", a_year_ago) == ("a1b2c3", "")
    three_years_ago = signed_ago(monkeypatch, signer, "preferences", 3 * 366 * 24 * 3600)
    assert signer.verify("preferences", three_years_ago) == (None, "expired")


def test_a_return_path_token_names_the_delivery_signed_and_fits_a_local_part():
    signer = Signer("secret-1")
    token = signer.return_token(7, 123456)
    assert len(token) == 32 and token == token.lower() and token.isalnum()
    assert signer.read_return_token(token) == (7, 123456)
    assert signer.read_return_token(token.upper()) == (7, 123456)  # a system that changed its case
    assert Signer("secret-2", previous=["secret-1"]).read_return_token(token) == (7, 123456)  # rotation
    assert Signer("another").read_return_token(token) is None  # forged with another secret
    flipped = ("b" if token[3] == "a" else "a").join((token[:3], token[4:]))
    assert signer.read_return_token(flipped) is None  # an altered id
    assert signer.read_return_token("not-a-token") is None
    assert signer.read_return_token("1" * 32) is None  # not base32
    assert signer.return_token(7, 123456) == token  # stable: a resend carries the same one


def test_tokens_are_itsdangerous_tokens_byte_for_byte(monkeypatch):
    """Signing takes a short way for the values mail carries (every mail signs two):
    the very token itsdangerous makes, in the same second, with the newest secret."""
    now = int(time.time())
    monkeypatch.setattr(time, "time", lambda: now)
    signer = Signer("secret-2", previous=["secret-1"])
    for purpose, value, newsletter in [
        ("unsubscribe", "0123456789abcdef01234567", "daily"),
        ("unsubscribe", "a1b2c3", None),
        ("preferences", secrets.token_hex(12), None),
        ("confirm", "a1b2c3", None),
    ]:
        made = URLSafeTimedSerializer(["secret-1", "secret-2"], salt=f"publisher.{purpose}").dumps(
            value if newsletter is None else [value, newsletter]
        )
        assert signer.sign(purpose, value, newsletter) == made
    # itsdangerous would compress this one; uncompressed, it reads the same
    same = "f" * 24
    assert signer.verify("preferences", signer.sign("preferences", same)) == (same, "")
    odd = 'an "odd" id, not ASCII: 독자'  # the long way, read back the same
    assert signer.verify("preferences", signer.sign("preferences", odd)) == (odd, "")
