"""``backends.twilio.client``: settings-built SDK clients, re-based onto the emulator."""

import threading

import pytest
from twilio.http.http_client import TwilioHttpClient

from notification.backends.twilio import (
    BaseUrlHttpClient,
    get_twilio_client,
    missing_twilio_settings,
    sender_kwargs,
)
from tests.support.fixtures_emulator import EmulatorHandle
from tests.support.settings_helpers import set_sms

API_URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=2"


def test_rewrite_replaces_scheme_host_and_port_and_keeps_path_and_query() -> None:
    client = BaseUrlHttpClient("http://127.0.0.1:8025")
    assert client.rewrite(API_URL) == (
        "http://127.0.0.1:8025/2010-04-01/Accounts/AC1/Messages.json?PageSize=2"
    )


def test_rewrite_adds_a_path_prefix() -> None:
    client = BaseUrlHttpClient("https://twilio-mock.internal/prefix/")
    assert client.rewrite(API_URL) == (
        "https://twilio-mock.internal/prefix/2010-04-01/Accounts/AC1/Messages.json?PageSize=2"
    )


def test_base_url_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="TWILIO_BASE_URL"):
        BaseUrlHttpClient("localhost:8025")


def test_client_uses_settings_and_is_reused_within_a_thread(
    twilio_emulator: EmulatorHandle, settings
) -> None:
    set_sms(settings, TWILIO_REQUEST_TIMEOUT=7.5)
    client = get_twilio_client()

    assert client.username == twilio_emulator.account_sid
    assert isinstance(client.http_client, BaseUrlHttpClient)
    assert client.http_client.timeout == 7.5
    assert get_twilio_client() is client

    others: list[object] = []
    thread = threading.Thread(target=lambda: others.append(get_twilio_client()))
    thread.start()
    thread.join()
    assert others[0] is not client

    set_sms(settings, TWILIO_AUTH_TOKEN="a" * 32)
    assert get_twilio_client() is not client  # settings changed: a new client


def test_without_base_url_the_plain_sdk_client_is_used(settings) -> None:
    set_sms(settings, TWILIO_BASE_URL="")
    set_sms(settings, TWILIO_ACCOUNT_SID="AC" + "1" * 32)
    set_sms(settings, TWILIO_AUTH_TOKEN="2" * 32)
    http_client = get_twilio_client().http_client
    assert type(http_client) is TwilioHttpClient


def test_missing_settings_are_named(settings) -> None:
    set_sms(settings, TWILIO_ACCOUNT_SID="")
    set_sms(settings, TWILIO_AUTH_TOKEN="token")
    set_sms(settings, TWILIO_FROM_NUMBER="")
    set_sms(settings, TWILIO_MESSAGING_SERVICE_SID="")
    assert missing_twilio_settings() == [
        "TWILIO_ACCOUNT_SID",
        "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID",
    ]
    set_sms(settings, TWILIO_ACCOUNT_SID="AC" + "1" * 32)
    set_sms(settings, TWILIO_MESSAGING_SERVICE_SID="MG" + "1" * 32)
    assert missing_twilio_settings() == []


def test_sender_prefers_the_messaging_service(settings) -> None:
    set_sms(settings, TWILIO_FROM_NUMBER="+15005550006")
    set_sms(settings, TWILIO_MESSAGING_SERVICE_SID="")
    assert sender_kwargs() == {"from_": "+15005550006"}
    set_sms(settings, TWILIO_MESSAGING_SERVICE_SID="MG" + "1" * 32)
    assert sender_kwargs() == {"messaging_service_sid": "MG" + "1" * 32}


def test_proxy_variables_still_decide_the_route_and_are_read_once_per_origin(
    twilio_emulator: EmulatorHandle, monkeypatch
) -> None:
    """Sending threads' sessions keep requests' answer per origin (no environment scan
    per message); the answer itself, and so the route, is requests' own."""
    from requests.exceptions import ProxyError

    from notification.backends.twilio import build_twilio_client
    from notification.backends.twilio_http import RememberingSession

    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    client = build_twilio_client()
    session = client.http_client.session
    assert isinstance(session, RememberingSession)
    with pytest.raises(ProxyError):  # the proxy from the environment is used
        client.messages.create(to="+14155550100", from_="+15005550006", body="via proxy")
    first = session.merge_environment_settings(API_URL, {}, None, None, None)
    assert first["proxies"] == requests_answer(API_URL)["proxies"]

    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    # The first answer is kept for the session's life (no scan per message) ...
    assert session.merge_environment_settings(API_URL, {}, None, None, None) == first
    fresh = build_twilio_client()  # ... and a new thread's client sees the new environment
    created = fresh.messages.create(to="+14155550100", from_="+15005550006", body="direct")
    assert created.sid and len(twilio_emulator.requests()) == 1  # the proxied one never came
    base = twilio_emulator.base_url + "/2010-04-01/Accounts/AC1/Messages.json"
    assert fresh.http_client.session.merge_environment_settings(
        base, {}, None, None, None
    ) == requests_answer(base)


def requests_answer(url: str) -> dict:
    """What a plain ``requests.Session`` says for ``url`` in this environment."""
    import requests

    return requests.Session().merge_environment_settings(url, {}, None, None, None)
