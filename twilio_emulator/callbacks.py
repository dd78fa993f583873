"""Signed webhooks: status callbacks and inbound SMS, posted the way Twilio posts them.

Twilio signs every webhook with ``X-Twilio-Signature`` (HMAC-SHA1 over the URL
plus the sorted POST parameters, keyed by the auth token). We sign with the SDK's
own ``RequestValidator.compute_signature`` so signing and validation cannot drift.

Status callbacks go out from a few worker threads, never from the request that
created the message, so a slow or dead receiver never delays the create response.
Each message always goes to the same worker (by sid), which keeps one message's
callbacks in order (sent before delivered) while different messages go in parallel.
Delivery errors are logged and recorded, then dropped, like Twilio without a
connection-override retry policy (one quick retry on a refused connection).
A callback URL with connection overrides in its fragment (``#rc=3&rp=ct,5xx``:
https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides) is
retried as they say: ``rc`` more attempts (at most 5) for the failures ``rp``
names (``ct`` no connection or a timeout, ``rt`` a read timeout, ``4xx``,
``5xx``, ``all``). The fragment is never sent (HTTP does not carry one); the
signature is computed over the URL as it was set, fragment included (Twilio's
security page: "the webhook URL set in Twilio"), which is the harder case for
a receiver: it must put back a fragment it never saw.
"""

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from twilio.request_validator import RequestValidator

from twilio_emulator.errors import API_VERSION
from twilio_emulator.state import Message, new_sid, utcnow

logger = logging.getLogger(__name__)

CALLBACK_TIMEOUT_SECONDS = 15
USER_AGENT = "TwilioProxy/1.1"


def status_callback_params(message: Message) -> dict[str, str]:
    """The form Twilio posts to ``StatusCallback`` for an outbound message's status."""
    params = {
        "AccountSid": message.account_sid,
        "ApiVersion": API_VERSION,
        "From": message.from_ or "",
        "MessageSid": message.sid,
        "MessageStatus": message.status,
        "SmsSid": message.sid,
        "SmsStatus": message.status,
        "To": message.to,
    }
    if message.messaging_service_sid:
        params["MessagingServiceSid"] = message.messaging_service_sid
    if message.status in ("failed", "undelivered") and message.error_code is not None:
        params["ErrorCode"] = str(message.error_code)
    if message.status == "delivered":
        # Twilio adds carrier fields without notice; receivers must ignore unknown ones.
        params["RawDlrDoneDate"] = utcnow().strftime("%y%m%d%H%M")
    return params


def inbound_sms_params(
    account_sid: str, from_: str, to: str, body: str, messaging_service_sid: str | None = None
) -> dict[str, str]:
    """The form Twilio posts to a number's messaging webhook for an incoming SMS."""
    sid = new_sid("SM")
    params = {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "Body": body,
        "From": from_,
        "FromCountry": "US",
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": to,
        "ToCountry": "US",
    }
    if messaging_service_sid:
        params["MessagingServiceSid"] = messaging_service_sid
    return params


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    return RequestValidator(auth_token).compute_signature(url, params)


def post_signed(
    session: requests.Session,
    auth_token: str,
    url: str,
    params: dict[str, str],
    timeout: float = CALLBACK_TIMEOUT_SECONDS,
) -> requests.Response:
    headers = {
        "X-Twilio-Signature": sign(auth_token, url, params),
        "User-Agent": USER_AGENT,
        "I-Twilio-Idempotency-Token": new_sid(""),
    }
    return session.post(url, data=params, headers=headers, timeout=timeout)


MAX_OVERRIDE_RETRIES = 5
RETRY_PAUSE_SECONDS = 0.05


@dataclass(frozen=True)
class RetryOverrides:
    """The ``rc`` and ``rp`` connection overrides of one callback URL."""

    count: int
    policy: frozenset[str]

    def retries(self, status_code: int | None, exc: Exception | None) -> bool:
        """Whether this failed attempt is one the policy retries."""
        if "all" in self.policy:
            return True
        if exc is not None:
            read_timeout = isinstance(exc, requests.ReadTimeout)
            return ("rt" in self.policy and read_timeout) or (
                "ct" in self.policy
                and isinstance(exc, requests.ConnectionError | requests.Timeout)
                and not read_timeout
            )
        assert status_code is not None
        return (status_code >= 500 and "5xx" in self.policy) or (
            400 <= status_code < 500 and "4xx" in self.policy
        )


def retry_overrides(url: str) -> RetryOverrides | None:
    """The URL fragment's retry overrides; ``None`` when it sets no ``rc``."""
    values = dict(parse_qsl(urlsplit(url).fragment))
    if "rc" not in values:
        return None
    try:
        count = max(0, min(MAX_OVERRIDE_RETRIES, int(values["rc"])))
    except ValueError:
        return None
    policy = frozenset(p.strip() for p in values.get("rp", "ct").split(",") if p.strip())
    return RetryOverrides(count, policy)


@dataclass(frozen=True)
class CallbackJob:
    url: str
    params: dict[str, str]
    generation: int


class CallbackSender:
    """A small pool of workers, each with its own keep-alive session and queue."""

    def __init__(self, auth_token: str, workers: int = 4) -> None:
        self.auth_token = auth_token
        self._queues: list[queue.Queue[CallbackJob | None]] = [
            queue.Queue() for _ in range(workers)
        ]
        self._threads = [
            threading.Thread(
                target=self._work, args=(q,), name=f"emulator-callbacks-{i}", daemon=True
            )
            for i, q in enumerate(self._queues)
        ]
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._generation = 0
        self._failing_urls: set[str] = set()
        # Cleared while paused: a test can hold callbacks back until it has seen what
        # must come first (e.g. the worker's own "queued"), then let them go in order.
        self._resumed = threading.Event()
        self._resumed.set()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def set_paused(self, paused: bool) -> None:
        if paused:
            self._resumed.clear()
        else:
            self._resumed.set()

    def stop(self) -> None:
        self._resumed.set()
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def submit(self, key: str, url: str, params: dict[str, str]) -> None:
        with self._lock:
            generation = self._generation
        self._queues[hash(key) % len(self._queues)].put(CallbackJob(url, params, generation))

    def reset(self) -> None:
        """Drop queued callbacks and forget the delivery log."""
        with self._lock:
            self._generation += 1
            self._log.clear()

    def delivery_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    def _work(self, jobs: "queue.Queue[CallbackJob | None]") -> None:
        session = requests.Session()
        try:
            while (job := jobs.get()) is not None:
                self._resumed.wait()
                with self._lock:
                    stale = job.generation != self._generation
                if not stale:
                    self._deliver(session, job)
        finally:
            session.close()

    def _deliver(self, session: requests.Session, job: CallbackJob) -> None:
        overrides = retry_overrides(job.url)
        if overrides is not None:
            self._deliver_with_overrides(session, job, overrides)
            return
        entry: dict[str, Any] = {"url": job.url, "params": job.params, "sent_at": None}
        # A receiver that is down (no web server in a unit test) would otherwise
        # cost a retry and a warning per callback: retry and warn only for the
        # first failure until that URL works again.
        with self._lock:
            known_down = job.url in self._failing_urls
        for attempt in (1, 2):
            entry["sent_at"] = utcnow().isoformat()
            try:
                response = post_signed(session, self.auth_token, job.url, job.params)
            except requests.RequestException as exc:
                entry.update(status_code=None, error=str(exc))
                retry = isinstance(exc, requests.ConnectionError) and not known_down
                if retry and attempt == 1:
                    time.sleep(0.1)
                    continue
                with self._lock:
                    self._failing_urls.add(job.url)
                log = logger.debug if known_down else logger.warning
                log("Status callback to %s failed: %s", job.url, exc)
            else:
                entry.update(status_code=response.status_code, error=None)
                with self._lock:
                    self._failing_urls.discard(job.url)
                if response.status_code >= 400:
                    logger.warning(
                        "Status callback to %s answered %s", job.url, response.status_code
                    )
            break
        with self._lock:
            if job.generation == self._generation:
                self._log.append(entry)

    def _deliver_with_overrides(
        self, session: requests.Session, job: CallbackJob, overrides: RetryOverrides
    ) -> None:
        """Up to ``1 + rc`` attempts, each logged, while the failure is one ``rp`` names."""
        for attempt in range(1 + overrides.count):
            entry: dict[str, Any] = {
                "url": job.url,
                "params": job.params,
                "sent_at": utcnow().isoformat(),
                "attempt": attempt + 1,
            }
            status_code: int | None = None
            error: Exception | None = None
            try:
                response = post_signed(session, self.auth_token, job.url, job.params)
                status_code = response.status_code
                entry.update(status_code=status_code, error=None)
            except requests.RequestException as exc:
                error = exc
                entry.update(status_code=None, error=str(exc))
            with self._lock:
                if job.generation == self._generation:
                    self._log.append(entry)
            failed = error is not None or (status_code is not None and status_code >= 400)
            if not failed or not overrides.retries(status_code, error):
                if failed:
                    logger.warning(
                        "Status callback to %s failed: %s", job.url, error or status_code
                    )
                return
            time.sleep(RETRY_PAUSE_SECONDS * (attempt + 1))
        logger.warning("Status callback to %s failed after %d retries", job.url, overrides.count)
