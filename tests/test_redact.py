"""One masking function for every place a secret could show: URLs (one host or many), free text, tokens."""

from __future__ import annotations

import pytest

from novawatch.bus import BusError, parse_url
from novawatch.bus.url import mask_url, with_password
from novawatch.config import mask as config_mask
from novawatch.redact import MASK, mask


@pytest.mark.parametrize(("raw", "shown"), [
    # issue 13 item 7: "p@ss" was shown as "guest:***@ss@"
    ("rabbit://guest:p@ss@127.0.0.1:5672/", f"rabbit://guest:{MASK}@127.0.0.1:5672/"),
    # a "/" (or "?", "#") that was not percent-encoded ends urllib's host part inside the password
    ("rabbit://guest:pa/ss@127.0.0.1:5672/", f"rabbit://guest:{MASK}@127.0.0.1:5672/"),
    ("rabbit://guest:pa?ss@h/", f"rabbit://guest:{MASK}@h/"),
    ("rabbit://guest:pa#ss@h/", f"rabbit://guest:{MASK}@h/"),
    # every host of a multi-host URL kept, each password masked, password options masked
    ("rabbit://nova:p1@h1:5672,nova:p2@h2:5673/vh?password=x3&ssl_key_password=k9&durable=false",
     f"rabbit://nova:{MASK}@h1:5672,nova:{MASK}@h2:5673/vh?password={MASK}&ssl_key_password={MASK}&durable=false"),
    ("http://admin:s3cret@127.0.0.1:8774", f"http://admin:{MASK}@127.0.0.1:8774"),
    ("postgresql+psycopg://nw:p%40x@/nw?host=/run/pg", f"postgresql+psycopg://nw:{MASK}@/nw?host=/run/pg"),
    ("amqp://u:p@[::1]:5672//", f"amqp://u:{MASK}@[::1]:5672//"),
])
def test_urls(raw: str, shown: str) -> None:
    assert mask(raw) == shown
    assert mask(mask(raw)) == shown  # masking twice changes nothing


@pytest.mark.parametrize("raw", [
    "embedded:///tmp/with@sign/bus", "sqlite:////tmp/a:b@c/db.sqlite3", "http://host/?email=a@b",
    "rabbit://nova@h/", "memory://", "http://127.0.0.1:8774", "amqp://[::1:5672", "10:30:01 ok", "",
])
def test_what_holds_no_secret_is_unchanged(raw: str) -> None:
    assert mask(raw) == raw


def test_free_text_errors_and_tokens() -> None:
    text = ("ConnectError: guest:p@ss@broker refused; cannot read rabbit://u:pa/ss@h:5672/ nor "
            "'http://a:b@c/'; Authorization: Bearer tok-123, X-Auth-Token: tok-456 token=tok-789")
    shown = mask(text)
    for secret in ("p@ss", "ss@broker", "pa/ss", ":b@", "tok-123", "tok-456", "tok-789"):
        assert secret not in shown
    assert f"guest:{MASK}@broker" in shown and f"rabbit://u:{MASK}@h:5672/" in shown


def test_one_function_everywhere() -> None:
    assert mask_url is mask and config_mask is mask


def test_bad_bus_urls_say_what_to_fix_without_the_password() -> None:
    # issue 13 item 7: a password with "/" was printed in clear in the "bad port" error
    with pytest.raises(BusError) as info:
        parse_url("rabbit://guest:pa/ss@127.0.0.1:5672/")
    message = str(info.value)
    assert "pa/ss" not in message and "ss@" not in message
    assert "percent-encode" in message and "%2F" in message and f"guest:{MASK}@127.0.0.1:5672" in message
    with pytest.raises(BusError, match="bad port") as info:
        parse_url("rabbit://guest:s3cret@h:notaport/")
    assert "s3cret" not in str(info.value)


def test_bus_password_is_encoded_into_every_host() -> None:
    url = with_password("rabbit://nova:old@h1:5672,nova:old@h2/vh?x=1", "n/w@p?s")
    assert url == "rabbit://nova:n%2Fw%40p%3Fs@h1:5672,nova:n%2Fw%40p%3Fs@h2/vh?x=1"
    parsed = parse_url(url)
    assert [h.password for h in parsed.hosts] == ["n/w@p?s", "n/w@p?s"] and parsed.path == "vh"
    assert with_password("rabbit://h/", "x") == "rabbit://h/"  # no user named: nothing to fill in
