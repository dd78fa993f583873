"""The Twilio emulator, driven through the real ``twilio`` SDK over HTTP (never mocked)."""

import json
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from notification.backends.twilio import BaseUrlHttpClient, get_twilio_client
from tests.support.fixtures_emulator import EmulatorHandle, start_emulator_process
from tests.support.settings_helpers import set_sms
from tests.support.waiting import wait_until

TO = "+14155550100"
SERVICE_SID = "MG" + "ab" * 16


def wait_for(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    return wait_until(condition, timeout)


class Receiver:
    """A tiny webhook endpoint recording every POST (path, headers, form)."""

    def __init__(self) -> None:
        self.hits: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                receiver.hits.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "form": {k: v[0] for k, v in parse_qs(body).items()},
                    }
                )
                reply = b"<Response/>"
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


def send(**kwargs: Any):
    params = {"to": TO, "from_": "+15005550006", "body": "Hello from the emulator", **kwargs}
    return get_twilio_client().messages.create(**params)


def rest_error(**kwargs: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        send(**kwargs)
    return caught.value


# --- create, fetch, list -------------------------------------------------------------


def test_create_returns_a_realistic_message(twilio_emulator: EmulatorHandle) -> None:
    message = send(body="x" * 161, status_callback="https://example.com/status")

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.account_sid == twilio_emulator.account_sid
    assert message.api_version == "2010-04-01"
    assert message.status == "queued"
    assert message.direction == "outbound-api"
    assert (message.to, message.from_) == (TO, "+15005550006")
    assert message.num_segments == "2"
    assert message.num_media == "0"
    assert message.error_code is None and message.price_unit == "USD"
    assert isinstance(message.date_created, datetime)
    assert (
        message.uri
        == f"/2010-04-01/Accounts/{twilio_emulator.account_sid}/Messages/{message.sid}.json"
    )
    assert "media" in message.subresource_uris
    [recorded] = twilio_emulator.messages()
    assert recorded["sid"] == message.sid
    assert recorded["segments"] == 2
    assert recorded["status_callback"] == "https://example.com/status"
    assert twilio_emulator.requests()[0]["outcome"] == "accepted"


def test_segments_follow_the_shared_counting_rules(twilio_emulator: EmulatorHandle) -> None:
    assert send(body="€" * 80).num_segments == "1"  # 160 septets: extension chars count twice
    assert send(body="€" * 81).num_segments == "2"
    assert send(body="😀" * 35).num_segments == "1"  # 70 UTF-16 units
    assert send(body="😀" * 36).num_segments == "2"


def test_messaging_service_is_accepted_without_a_segment_count(
    twilio_emulator: EmulatorHandle,
) -> None:
    message = get_twilio_client().messages.create(
        to=TO, messaging_service_sid=SERVICE_SID, body="x" * 200
    )

    assert message.status == "accepted"
    assert message.num_segments == "0"
    assert message.messaging_service_sid == SERVICE_SID
    assert message.from_ is None
    assert twilio_emulator.messages()[0]["segments"] == 2


def test_fetch_follows_the_message_to_delivered(twilio_emulator: EmulatorHandle) -> None:
    sid = send().sid
    client = get_twilio_client()

    fetched = wait_for(lambda: (m := client.messages(sid).fetch()).status == "delivered" and m)
    assert fetched.sid == sid
    assert fetched.date_sent is not None
    assert fetched.price is not None


def test_fetch_of_unknown_sid_is_20404(twilio_emulator: EmulatorHandle) -> None:
    with pytest.raises(TwilioRestException) as caught:
        get_twilio_client().messages("SM" + "0" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_list_pages_newest_first(twilio_emulator: EmulatorHandle) -> None:
    sids = [send(body=f"message {i}").sid for i in range(5)]

    listed = get_twilio_client().messages.list(page_size=2)

    assert [m.sid for m in listed] == list(reversed(sids))
    other = send(to="+14155550142").sid
    assert [m.sid for m in get_twilio_client().messages.list(to="+14155550142")] == [other]


# --- authentication and validation ---------------------------------------------------


def test_wrong_auth_token_is_401_20003(twilio_emulator: EmulatorHandle, settings) -> None:
    set_sms(settings, TWILIO_AUTH_TOKEN="0" * 32)
    error = rest_error()
    assert (error.status, error.code) == (401, 20003)
    assert twilio_emulator.messages() == []
    assert twilio_emulator.requests()[0]["outcome"] == "rejected"


def test_other_account_in_path_is_404_20404(twilio_emulator: EmulatorHandle) -> None:
    client = Client(
        twilio_emulator.account_sid,
        twilio_emulator.auth_token,
        account_sid="AC" + "9" * 32,
        http_client=BaseUrlHttpClient(twilio_emulator.base_url, timeout=5),
    )
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=TO, from_="+15005550006", body="hi")
    assert (caught.value.status, caught.value.code) == (404, 20404)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from_": "+15005550001"}, 21212),
        ({"to": "+15005550001"}, 21211),
        ({"to": "+15005550002"}, 21612),
        ({"to": "+15005550003"}, 21408),
        ({"to": "+15005550004"}, 21610),
        ({"to": "+15005550009"}, 21614),
        ({"to": "4155550100"}, 21211),
        ({"to": "+1 415 555 0100"}, 21211),
        ({"from_": None}, 21603),
        ({"from_": "not a sender!"}, 21212),
        ({"body": None}, 21602),
        ({"body": "x" * 1601}, 21617),
        ({"status_callback": "/relative/path"}, 21609),
        ({"status_callback": "ftp://example.com/status"}, 21609),
        ({"status_callback": "http://bad_host.example.com/status"}, 21609),
        ({"validity_period": 0}, 21624),
        ({"validity_period": 36001}, 21624),
    ],
)
def test_invalid_requests_get_twilios_error(
    twilio_emulator: EmulatorHandle, params: dict[str, Any], code: int
) -> None:
    error = rest_error(**params)

    assert (error.status, error.code) == (400, code)
    assert twilio_emulator.messages() == []
    [logged] = twilio_emulator.requests()
    assert (logged["outcome"], logged["error_code"]) == ("rejected", code)


def test_body_of_exactly_1600_characters_is_accepted(twilio_emulator: EmulatorHandle) -> None:
    assert send(body="x" * 1600, validity_period=36000).num_segments == "11"


def test_alphanumeric_sender_is_accepted(twilio_emulator: EmulatorHandle) -> None:
    assert send(from_="ACME Corp").from_ == "ACME Corp"


# --- sender queue --------------------------------------------------------------------


def test_full_sender_queue_rejects_with_21611(twilio_emulator: EmulatorHandle) -> None:
    twilio_emulator.configure(queue_limit=3, drain_rate=0.01)
    for _ in range(3):
        send(body="one segment")

    error = rest_error(body="one segment")

    assert (error.status, error.code) == (400, 21611)
    assert send(from_="+15005550007").status == "queued"  # another sender has its own queue
    assert len(twilio_emulator.messages()) == 4


def test_full_messaging_service_queue_fails_later_with_30001(
    twilio_emulator: EmulatorHandle, receiver: Receiver
) -> None:
    twilio_emulator.configure(queue_limit=1, drain_rate=0.01)
    client = get_twilio_client()
    create = client.messages.create
    create(to=TO, messaging_service_sid=SERVICE_SID, body="fits")

    overflow = create(
        to=TO, messaging_service_sid=SERVICE_SID, body="overflows", status_callback=receiver.url
    )

    assert overflow.status == "accepted"
    wait_for(lambda: receiver.hits)
    assert receiver.hits[0]["form"]["MessageStatus"] == "failed"
    assert receiver.hits[0]["form"]["ErrorCode"] == "30001"
    assert client.messages(overflow.sid).fetch().error_code == 30001


# --- injected faults -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code"), [("http_429", 429, 20429), ("http_500", 500, 20500)]
)
def test_injected_http_errors(
    twilio_emulator: EmulatorHandle, kind: str, status: int, code: int
) -> None:
    twilio_emulator.inject_faults([{"kind": kind, "count": 2}])

    for _ in range(2):
        error = rest_error()
        assert (error.status, error.code) == (status, code)
    assert send().status == "queued"  # the fault is used up
    assert [r["outcome"] for r in twilio_emulator.requests()] == [kind, kind, "accepted"]
    assert len(twilio_emulator.messages()) == 1


def test_fault_can_target_one_recipient(twilio_emulator: EmulatorHandle) -> None:
    twilio_emulator.inject_faults([{"kind": "http_429", "to": "+14155550199"}])

    assert send().status == "queued"
    assert rest_error(to="+14155550199").code == 20429


def test_timeout_fault_records_the_message_but_the_sdk_times_out(
    twilio_emulator: EmulatorHandle, settings
) -> None:
    set_sms(settings, TWILIO_REQUEST_TIMEOUT=0.3)
    twilio_emulator.inject_faults([{"kind": "timeout"}])

    with pytest.raises(requests.exceptions.Timeout):
        send(body="did it arrive?")

    [message] = twilio_emulator.messages()
    assert message["body"] == "did it arrive?"
    [logged] = twilio_emulator.requests()
    assert (logged["outcome"], logged["sid"]) == ("timeout", message["sid"])


def test_drop_fault_records_the_message_and_closes_the_connection(
    twilio_emulator: EmulatorHandle,
) -> None:
    twilio_emulator.inject_faults([{"kind": "drop"}])

    with pytest.raises(requests.exceptions.ConnectionError):
        send()

    assert len(twilio_emulator.messages()) == 1
    assert twilio_emulator.requests()[0]["outcome"] == "drop"
    assert send().status == "queued"  # the client recovers with a new connection


def test_bad_fault_spec_is_rejected(twilio_emulator: EmulatorHandle) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        twilio_emulator.inject_faults([{"kind": "explode"}])
    assert caught.value.code == 400
    assert "kind" in json.loads(caught.value.read())["error"]


def test_latency_delays_answers(twilio_emulator: EmulatorHandle) -> None:
    twilio_emulator.configure(latency_ms=200)
    started = time.monotonic()
    send()
    assert time.monotonic() - started >= 0.2


# --- status callbacks and inbound webhooks -------------------------------------------


def test_status_callbacks_are_signed_sent_then_delivered(
    twilio_emulator: EmulatorHandle, receiver: Receiver
) -> None:
    callback_url = f"{receiver.url}/webhooks/status?notification=7"
    message = send(status_callback=callback_url)

    wait_for(lambda: len(receiver.hits) == 2)

    assert [hit["form"]["MessageStatus"] for hit in receiver.hits] == ["sent", "delivered"]
    validator = RequestValidator(twilio_emulator.auth_token)
    for hit in receiver.hits:
        form = hit["form"]
        assert hit["path"] == "/webhooks/status?notification=7"
        assert validator.validate(callback_url, form, hit["headers"]["X-Twilio-Signature"])
        assert not RequestValidator("f" * 32).validate(
            callback_url, form, hit["headers"]["X-Twilio-Signature"]
        )
        assert form["MessageSid"] == form["SmsSid"] == message.sid
        assert form["SmsStatus"] == form["MessageStatus"]
        assert form["AccountSid"] == twilio_emulator.account_sid
        assert (form["From"], form["To"], form["ApiVersion"]) == ("+15005550006", TO, "2010-04-01")
        assert "ErrorCode" not in form


def test_outcome_override_gives_undelivered_with_error_code(
    twilio_emulator: EmulatorHandle, receiver: Receiver
) -> None:
    twilio_emulator.set_outcome(TO, "undelivered", 30003)
    message = send(status_callback=receiver.url)

    wait_for(lambda: len(receiver.hits) == 2)

    final = receiver.hits[-1]["form"]
    assert (final["MessageStatus"], final["ErrorCode"]) == ("undelivered", "30003")
    fetched = get_twilio_client().messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)


def test_callbacks_can_be_switched_off(twilio_emulator: EmulatorHandle, receiver: Receiver) -> None:
    twilio_emulator.configure(callbacks_enabled=False)
    message = send(status_callback=receiver.url)

    wait_for(lambda: get_twilio_client().messages(message.sid).fetch().status == "delivered")
    # Switched on again, a later message's callbacks arrive: by then any callback of
    # the first one (its status changes came earlier) would have arrived too.
    twilio_emulator.configure(callbacks_enabled=True)
    later = send(status_callback=receiver.url)
    wait_for(lambda: [h for h in receiver.hits if h["form"]["MessageStatus"] == "delivered"])
    assert {hit["form"]["MessageSid"] for hit in receiver.hits} == {later.sid}


def test_inbound_sms_is_posted_signed(twilio_emulator: EmulatorHandle, receiver: Receiver) -> None:
    url = f"{receiver.url}/webhooks/inbound"

    answer = twilio_emulator.inbound("+14155550100", "+15005550006", "STOP", url)

    assert (answer["status"], answer["body"]) == (200, "<Response/>")
    [hit] = receiver.hits
    form = hit["form"]
    assert (form["From"], form["To"], form["Body"]) == ("+14155550100", "+15005550006", "STOP")
    assert re.fullmatch(r"SM[0-9a-f]{32}", form["MessageSid"])
    assert RequestValidator(twilio_emulator.auth_token).validate(
        url, form, hit["headers"]["X-Twilio-Signature"]
    )


def test_reset_forgets_messages_and_config(twilio_emulator: EmulatorHandle) -> None:
    twilio_emulator.configure(latency_ms=50)
    send()
    twilio_emulator.reset()
    assert twilio_emulator.messages() == []
    assert twilio_emulator.control("GET", "config")["latency_ms"] == 0


# --- concurrency and the separate process --------------------------------------------


def test_concurrent_senders_each_get_every_message_once(twilio_emulator: EmulatorHandle) -> None:
    sids: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for n in range(25):
                sid = send(body=f"worker {index} message {n}").sid
                with lock:
                    sids.append(sid)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(sids)) == 200
    assert {m["sid"] for m in twilio_emulator.messages()} == set(sids)


def test_management_command_runs_as_a_separate_process(settings) -> None:
    with start_emulator_process("--drain-rate", "1000", "--callback-delay-ms", "10") as emulator:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emulator.base_url)
        set_sms(settings, TWILIO_BASE_URL=emulator.base_url)
        set_sms(settings, TWILIO_ACCOUNT_SID=emulator.account_sid)
        set_sms(settings, TWILIO_AUTH_TOKEN=emulator.auth_token)
        message = send()
        assert [m["sid"] for m in emulator.messages()] == [message.sid]
        process = emulator.process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_control_api_answers_unknown_paths_with_404(twilio_emulator: EmulatorHandle) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{twilio_emulator.base_url}/_emulator/nothing", timeout=5)
    assert caught.value.code == 404


def test_a_client_that_hangs_up_mid_body_sent_no_message(twilio_emulator: EmulatorHandle) -> None:
    """A worker killed between the headers and the body must not count as a create request."""
    import base64
    import socket
    from urllib.parse import urlsplit

    base = urlsplit(twilio_emulator.base_url)
    credentials = base64.b64encode(
        f"{twilio_emulator.account_sid}:{twilio_emulator.auth_token}".encode()
    ).decode()
    body = b"To=%2B14155550100&From=%2B15005550006&Body=cut+short"
    head = (
        f"POST /2010-04-01/Accounts/{twilio_emulator.account_sid}/Messages.json HTTP/1.1\r\n"
        f"Host: {base.netloc}\r\nAuthorization: Basic {credentials}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((base.hostname, base.port), timeout=5) as connection:
        connection.sendall(head + body[:10])
    # A complete request afterwards is served and logged: the half one never was.
    get_twilio_client().messages.create(to="+14155550100", from_="+15005550006", body="whole")
    assert [r["body"] for r in twilio_emulator.requests()] == ["whole"]
    assert [m["body"] for m in twilio_emulator.messages()] == ["whole"]


def test_http_400_fault_answers_the_given_twilio_code(twilio_emulator: EmulatorHandle) -> None:
    twilio_emulator.inject_faults([{"kind": "http_400", "error_code": 30004}])
    error = rest_error()
    assert (error.status, error.code) == (400, 30004)
    assert error.msg.endswith("Message blocked")
    assert twilio_emulator.messages() == []
    with pytest.raises(urllib.error.HTTPError) as refused:
        twilio_emulator.inject_faults([{"kind": "http_400"}])
    assert refused.value.code == 400


def test_held_answers_are_sent_when_released(twilio_emulator: EmulatorHandle) -> None:
    twilio_emulator.inject_faults([{"kind": "timeout", "hold_ms": 120_000}])
    answers: list[Any] = []
    client = threading.Thread(target=lambda: answers.append(send(body="held")))
    client.start()
    wait_for(lambda: twilio_emulator.requests())
    assert client.is_alive() and answers == []  # accepted, answer held
    twilio_emulator.release_held()
    client.join(30)
    assert answers[0].sid == twilio_emulator.messages()[0]["sid"]


def test_paused_callbacks_are_sent_in_order_once_resumed(
    twilio_emulator: EmulatorHandle, receiver: Receiver
) -> None:
    twilio_emulator.configure(callbacks_paused=True)
    message = send(status_callback=receiver.url)
    wait_for(lambda: get_twilio_client().messages(message.sid).fetch().status == "delivered")
    assert receiver.hits == []  # both status changes happened; their callbacks wait
    twilio_emulator.configure(callbacks_paused=False)
    wait_for(lambda: len(receiver.hits) == 2)
    assert [hit["form"]["MessageStatus"] for hit in receiver.hits] == ["sent", "delivered"]
