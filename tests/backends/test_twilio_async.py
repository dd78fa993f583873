"""The send job's async path: ``TwilioBackend.send_async`` through the SDK's aiohttp client.

Each transport failure aiohttp can raise is produced by the emulator (or a closed
port) and must be classified as the ``requests`` path classifies it: refused =
nothing left = retryable; dropped, reset or timed out after the request was
written = ambiguous. The client must never resend a POST by itself, must apply
``TWILIO_REQUEST_TIMEOUT``, authenticate without aiohttp's deprecated ``auth=``,
route through the environment's proxy like requests, and close its session when
the settings change and when the process exits.
"""

import asyncio
import os
import select
import signal
import time
import warnings

import aiohttp
import pytest

from devstack.ports import free_port
from notification.backends.base import FailureKind, OutgoingSms
from notification.backends.twilio import (
    TwilioBackend,
    _settings_key,
    async_clients,
    build_async_twilio_client,
)
from notification.backends.twilio_http import (
    FORM_CONTENT_TYPE,
    RebasedAsyncHttpClient,
    form_body,
    rebase,
)
from notification.backends.twilio_payloads import classify_exception
from notification.loops import process_loop, run_exit_closers
from notification.send.dispatch import SEND_LOOP
from tests.support.fixtures_emulator import EmulatorHandle
from tests.support.settings_helpers import set_sms

TO = "+14155550170"


def message(to: str = TO, body: str = "async") -> OutgoingSms:
    return OutgoingSms(to=to, body=body, segments=1, status_callback="", validity_period=600)


def send_on_the_sending_loop(outgoing: OutgoingSms, timeout: float = 30):
    """What the Dispatcher does with one message: await ``send_async`` on the process's loop."""
    future = asyncio.run_coroutine_threadsafe(
        TwilioBackend().send_async(outgoing), process_loop(SEND_LOOP)
    )
    return future.result(timeout)


def test_accepted_through_the_rebased_async_client(twilio_emulator: EmulatorHandle) -> None:
    result = send_on_the_sending_loop(message())

    [created] = twilio_emulator.messages()
    assert result.sid == created["sid"] and result.status == "queued" and result.segments == 1
    # The emulator checks the Basic credentials: the header we set was accepted.
    assert twilio_emulator.requests()[0]["outcome"] == "accepted"


def test_the_form_arrives_as_written(twilio_emulator: EmulatorHandle) -> None:
    """The body is encoded here, not by aiohttp's ``FormData``: what Twilio stores is
    still exactly the text, whatever it holds."""
    body = "Ünïcødé 😀 & a=b+c %20 100% ? #frag\nline two"
    result = send_on_the_sending_loop(message(body=body))

    [created] = twilio_emulator.messages()
    assert created["sid"] == result.sid and created["body"] == body


@pytest.mark.parametrize(
    "data",
    [
        {"To": TO, "Body": "Ünïcødé 😀 & a=b+c %20", "ValidityPeriod": 600, "Flag": True},
        {"MediaUrl": ["https://e.test/a?x=1&y=2", "https://e.test/b"], "Price": 0.5},
        {},
    ],
)
def test_the_form_body_is_what_aiohttp_formdata_would_send(data: dict) -> None:
    expected = aiohttp.FormData(data)()

    assert form_body(data) == expected._value
    assert expected.content_type == FORM_CONTENT_TYPE


def test_a_value_that_is_not_plain_form_text_is_left_to_aiohttp() -> None:
    assert form_body({"Body": "hi", "File": b"raw bytes"}) is None
    assert form_body({"MediaUrl": ["https://e.test/a", object()]}) is None


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        ("drop", FailureKind.AMBIGUOUS, "lost after sending"),
        ("reset", FailureKind.AMBIGUOUS, "lost after sending"),
        ("http_500", FailureKind.RETRYABLE, ""),
    ],
)
def test_faults_after_the_request_left_are_classified_and_never_resent(
    twilio_emulator: EmulatorHandle, fault: str, kind: FailureKind, words: str
) -> None:
    twilio_emulator.inject_faults([{"kind": fault, "count": 1}])

    result = send_on_the_sending_loop(message())

    assert result.kind is kind and words in result.message
    # One request: neither the SDK (aiohttp-retry) nor aiohttp resent the POST.
    assert len(twilio_emulator.requests()) == 1
    if fault != "http_500":
        assert len(twilio_emulator.messages()) == 1  # it did arrive: hence "ambiguous"


def test_a_held_answer_times_out_after_the_request_timeout_and_is_ambiguous(
    twilio_emulator: EmulatorHandle, settings
) -> None:
    set_sms(settings, TWILIO_REQUEST_TIMEOUT=0.5)
    twilio_emulator.inject_faults([{"kind": "timeout", "count": 1, "hold_ms": 60_000}])
    started = time.monotonic()

    result = send_on_the_sending_loop(message())

    assert time.monotonic() - started < 30  # the 60 s hold was not waited out
    assert result.kind is FailureKind.AMBIGUOUS and "Timed out" in result.message
    assert [r["outcome"] for r in twilio_emulator.requests()] == ["timeout"]


def test_a_refused_connection_left_nothing_and_is_retryable(
    twilio_emulator: EmulatorHandle, settings
) -> None:
    set_sms(settings, TWILIO_BASE_URL=f"http://127.0.0.1:{free_port()}")

    result = send_on_the_sending_loop(message())

    assert result.kind is FailureKind.RETRYABLE and "Could not connect" in result.message
    assert twilio_emulator.requests() == []


def test_bad_settings_are_not_sent_and_retryable(twilio_emulator: EmulatorHandle, settings):
    set_sms(settings, TWILIO_BASE_URL="emulator:8001")  # not absolute: no client

    result = send_on_the_sending_loop(message())

    assert result.kind is FailureKind.RETRYABLE and "Could not set up" in result.message


def test_aiohttp_exceptions_keep_the_three_classes() -> None:
    """The classes the emulator cannot produce on demand (a connect timeout, a proxy,
    TLS, a truncated body), from aiohttp's own exception types."""
    key = aiohttp.client_reqrep.ConnectionKey("h", 443, True, True, None, None, None, None)
    never_sent = [
        aiohttp.ConnectionTimeoutError("Connection timeout to host"),
        aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused")),
        aiohttp.ClientProxyConnectionError(key, OSError(111, "proxy refused")),
    ]
    maybe_sent = [
        aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
        TimeoutError(),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        aiohttp.ClientPayloadError("Response payload is not completed"),
    ]
    assert {classify_exception(exc).kind for exc in never_sent} == {FailureKind.RETRYABLE}
    assert {classify_exception(exc).kind for exc in maybe_sent} == {FailureKind.AMBIGUOUS}


def test_the_async_client_cannot_retry_and_applies_the_timeout(settings) -> None:
    set_sms(settings, TWILIO_BASE_URL="http://127.0.0.1:1/prefix/")
    set_sms(settings, TWILIO_REQUEST_TIMEOUT=7.5)
    http_client = build_async_twilio_client().http_client

    assert isinstance(http_client, RebasedAsyncHttpClient)
    assert http_client.session is None  # made on its loop; never aiohttp-retry's RetryClient
    timeout = http_client.request_timeout
    assert (timeout.sock_connect, timeout.sock_read, timeout.total) == (7.5, 7.5, None)
    assert rebase("https://api.twilio.com/2010-04-01/A.json?x=1", http_client.base) == (
        "http://127.0.0.1:1/prefix/2010-04-01/A.json?x=1"
    )


def test_credentials_go_in_a_header_not_in_aiohttp_deprecated_auth(
    twilio_emulator: EmulatorHandle,
) -> None:
    """The SDK's client passes ``auth=`` (a ``DeprecationWarning`` per request in aiohttp)."""

    async def run():
        client = build_async_twilio_client()
        try:
            return await client.messages.create_async(to=TO, from_="+15005550006", body="h")
        finally:
            await client.http_client.close()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        created = asyncio.run(run())
    assert created.sid == twilio_emulator.messages()[0]["sid"]
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)], caught


def test_sessions_replaced_by_new_settings_are_closed_once_idle(
    twilio_emulator: EmulatorHandle, settings
) -> None:
    async def run() -> list[bool]:
        old = async_clients.lease(("a",), build_async_twilio_client)
        await old.client.messages.create_async(to=TO, from_="+15005550006", body="old")
        new = async_clients.lease(("b",), build_async_twilio_client)  # settings changed
        still_open = not old.client.http_client.session.closed  # one request holds it
        await async_clients.release(old)
        closed_after = old.client.http_client.session.closed
        await async_clients.release(new)
        await new.client.http_client.close()
        return [still_open, closed_after]

    assert asyncio.run(run()) == [True, True]


def test_the_environment_proxy_is_used_like_requests_uses_it(
    twilio_emulator: EmulatorHandle, monkeypatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://user:secret@127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("HTTP_PROXY", "http://user:secret@127.0.0.1:9")

    async def via(client: RebasedAsyncHttpClient) -> BaseException | None:
        from twilio.rest import Client

        sdk = Client(twilio_emulator.account_sid, twilio_emulator.auth_token, http_client=client)
        try:
            await sdk.messages.create_async(to=TO, from_="+15005550006", body="proxied?")
        except Exception as exc:
            return exc
        finally:
            await client.close()
        return None

    proxied = RebasedAsyncHttpClient(twilio_emulator.base_url, timeout=5)
    error = asyncio.run(via(proxied))
    assert isinstance(error, aiohttp.ClientProxyConnectionError)
    assert classify_exception(error).kind is FailureKind.RETRYABLE  # nothing reached Twilio
    [(proxy, headers)] = proxied._proxies.values()
    assert proxy == "http://127.0.0.1:9" and headers["Proxy-Authorization"].startswith("Basic ")

    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert asyncio.run(via(RebasedAsyncHttpClient(twilio_emulator.base_url, timeout=5))) is None
    assert len(twilio_emulator.requests()) == 1  # the proxied one never came


def test_the_exit_hook_closes_the_sending_loop_session(twilio_emulator: EmulatorHandle) -> None:
    """What runs at process exit (``atexit``): the loop's aiohttp session is closed
    there, not left to the interpreter's teardown ("Unclosed client session")."""
    assert send_on_the_sending_loop(message()).sid

    async def current_session() -> aiohttp.ClientSession:
        slot = async_clients.lease(_settings_key(), build_async_twilio_client)
        await async_clients.release(slot)
        return slot.client.http_client.session

    loop = process_loop(SEND_LOOP)
    session = asyncio.run_coroutine_threadsafe(current_session(), loop).result(10)
    assert not session.closed

    run_exit_closers()

    assert session.closed
    assert send_on_the_sending_loop(message(body="later")).sid  # a new one is made


def test_a_forked_process_gets_its_own_sending_loop() -> None:
    """RQ forks a work horse per job: the parent's loop thread does not exist there."""
    parent = process_loop(SEND_LOOP)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer whether its loop is new and runs
        ok = False
        try:
            child = process_loop(SEND_LOOP)
            ok = (
                child is not parent
                and asyncio.run_coroutine_threadsafe(asyncio.sleep(0, "ran"), child).result(10)
                == "ran"
            )
        finally:
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
    os.close(write)
    try:
        readable, _, _ = select.select([read], [], [], 30)
        answer = os.read(read, 1) if readable else b"timeout"
    finally:
        if not readable:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
    assert answer == b"1"
