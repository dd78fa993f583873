"""The Twilio backend: everything that knows the ``twilio`` SDK and Twilio's webhooks.

``client`` (building SDK clients from settings, re-based onto the emulator),
``failures`` (what a failed create request means), ``signature`` (the
``X-Twilio-Signature`` check of incoming webhooks) and ``payloads`` (their forms
as normalised events). The rest of the app sees only ``TwilioBackend``.

Account (was ``notification.backends.twilio.account``):

Whether a signed webhook is about our Twilio account.

The signature proves the sender knows our auth token; ``AccountSid`` says which
account the message belongs to. They disagree only when something is
misconfigured (a number of another account, or a subaccount, pointed at our
URL while sharing the token) or the token leaked: either way the callback does
not describe one of our messages and must not change one.

Overrides (was ``notification.backends.twilio.overrides``):

Twilio's webhook connection overrides on our status callback URLs.

Twilio documents per-URL "connection overrides": key-value pairs in the URL's
fragment (``#rc=3&rp=ct,5xx``) that change how Twilio calls that webhook:
``rc`` the retry count (0-5), ``rp`` the retry policy (which failures are
retried: ``ct`` connection failures, ``rt`` read timeouts, ``4xx``, ``5xx``,
``all``), ``ct``/``rt``/``tt`` timeouts in ms (``tt``, all attempts together,
at most 15,000) (https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides).
The page applies them to any webhook URL Twilio calls, Messaging's included,
and a fragment is never sent over HTTP (RFC 3986 section 3.5), so the server
never sees it.

Without them Twilio does not retry a status callback we answered 5xx (the
database was down), and that status is lost until reconciliation asks Twilio
(``notification.reconciliation``). With ``rc=3&rp=ct,5xx`` (the default of
``TWILIO_STATUS_CALLBACK_OVERRIDES``) a short outage of the web tier or the
database costs no callback; ``tt`` bounds the retries to 15 s, so longer
outages are reconciliation's.

The signature: Twilio's security page says the signature covers "the webhook
URL set in Twilio" and all POST parameters
(https://www.twilio.com/docs/usage/webhooks/webhooks-security); neither page
says whether the override fragment is part of it, and the server cannot see
the fragment to include it. So ``signed_url_candidates`` gives both forms,
the URL with our own fragment re-attached (what we set in Twilio) and without
it: a signature valid for either is Twilio's (only the auth token can make
one), and forging one still needs the token.

Client (was ``notification.backends.twilio.client``):

The one way the project builds a ``twilio.rest.Client``: from settings, optionally re-based.

The SDK has no base-URL setting, so when ``TWILIO_BASE_URL`` is set (the local
emulator) a ``TwilioHttpClient`` subclass rewrites scheme, host, port (and adds an
optional path prefix) on every request. Everything else, including error handling
and ``TwilioRestException``, is the real SDK.

Threading: clients are cached **per thread** (``threading.local``). A
``requests.Session`` is not documented as thread-safe and ``TwilioHttpClient``
keeps per-request state on itself, so sharing one client across a thread pool is
unsafe; one client per thread still reuses its keep-alive connection for every
message that thread sends. The cache key includes the settings, so tests that
change settings get a fresh client.

Signature (was ``notification.backends.twilio.signature``):

Twilio webhook signature checking.

The signed URL is the one Twilio called. Behind a proxy or a tunnel the request's
own host and scheme are not that URL, so it is rebuilt from ``PUBLIC_BASE_URL``
plus the path and query string; the request's Host header is never trusted.
A status callback URL may also carry connection overrides as its fragment,
which the request never shows (``overrides``).
"""

import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from notification.backends.base import (
    Accepted,
    BaseSmsBackend,
    LookupUnavailable,
    OutgoingSms,
    ProviderMessage,
    SegmentPrice,
    SendFailure,
)
from notification.backends.twilio_http import (
    AsyncClients,
    RebasedAsyncHttpClient,
    rebase,
    remembering,
    split_base_url,
)
from notification.backends.twilio_payloads import (
    accepted,
    failed,
    fetch_segment_price,
    message_price,
    not_set_up,
    sender_number_types,
)
from notification.backends.twilio_signature import signature_matches
from notification.conf import app_settings

# -------- account -----------------------------------------------------------------------


def is_for_our_account(form: Mapping[str, str]) -> bool:
    """True unless ``TWILIO_ACCOUNT_SID`` is set and the form names another account.

    Without a configured account (the app only checks signatures then) every
    signed form is accepted, as before.
    """
    ours = app_settings.TWILIO_ACCOUNT_SID
    return not ours or (form.get("AccountSid") or "").strip() == ours


# -------- overrides ---------------------------------------------------------------------


def fragment() -> str:
    """The overrides to append (without ``#``); empty: none configured."""
    return (app_settings.TWILIO_STATUS_CALLBACK_OVERRIDES or "").strip().lstrip("#")


def with_connection_overrides(url: str) -> str:
    """``url`` with the configured overrides as its fragment (an existing fragment is kept)."""
    overrides = fragment()
    if not url or not overrides or "#" in url:
        return url
    return f"{url}#{overrides}"


def signed_url_candidates(url: str) -> list[str]:
    """The URLs Twilio may have signed for a request that reached ``url`` (no fragment)."""
    overrides = fragment()
    return [url, f"{url}#{overrides}"] if overrides else [url]


# -------- client ------------------------------------------------------------------------


class BaseUrlHttpClient(TwilioHttpClient):
    """Sends every SDK request to ``base_url`` instead of ``*.twilio.com``."""

    def __init__(self, base_url: str, timeout: float | None = None) -> None:
        super().__init__(pool_connections=True, timeout=timeout)
        self.base = split_base_url(base_url)
        if self.session is not None:
            self.session.mount("http://", HTTPAdapter(pool_maxsize=4))

    def rewrite(self, url: str) -> str:
        return rebase(url, self.base)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return super().request(method, self.rewrite(url), *args, **kwargs)


_local = threading.local()


def _settings_key() -> tuple[str, str, str, float]:
    return (
        app_settings.TWILIO_ACCOUNT_SID,
        app_settings.TWILIO_AUTH_TOKEN,
        app_settings.TWILIO_BASE_URL,
        float(app_settings.TWILIO_REQUEST_TIMEOUT),
    )


def build_twilio_client() -> Client:
    """A new client from settings (prefer ``get_twilio_client`` to reuse connections)."""
    account_sid, auth_token, base_url, timeout = _settings_key()
    http_client = (
        BaseUrlHttpClient(base_url, timeout=timeout)
        if base_url
        else TwilioHttpClient(pool_connections=True, timeout=timeout)
    )
    http_client.session = remembering(http_client.session)  # no environment scan per request
    return Client(account_sid, auth_token, http_client=http_client)


def build_async_twilio_client() -> Client:
    """A new client for the send job's event loop (``twilio_http``, "Async")."""
    account_sid, auth_token, base_url, timeout = _settings_key()
    http_client = RebasedAsyncHttpClient(base_url, timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)


#: Per event loop, the async client of the current settings.
async_clients = AsyncClients()


def get_twilio_client() -> Client:
    """This thread's client for the current settings (created on first use)."""
    key = _settings_key()
    cached = getattr(_local, "client", None)
    if cached is None or cached[0] != key:
        cached = (key, build_twilio_client())
        _local.client = cached
    return cached[1]


def missing_twilio_settings() -> list[str]:
    """Names of the settings a sending worker needs but does not have (empty when ready)."""
    missing = [
        name
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
        if not getattr(app_settings, name)
    ]
    if not app_settings.TWILIO_FROM_NUMBER and not app_settings.TWILIO_MESSAGING_SERVICE_SID:
        missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
    return missing


def sender_kwargs() -> dict[str, str]:
    """``messages.create`` sender argument: the Messaging Service when set, else the number."""
    if app_settings.TWILIO_MESSAGING_SERVICE_SID:
        return {"messaging_service_sid": app_settings.TWILIO_MESSAGING_SERVICE_SID}
    return {"from_": app_settings.TWILIO_FROM_NUMBER}


# -------- twilio ------------------------------------------------------------------------


def _provider_message(record: Any) -> ProviderMessage:
    """An SDK ``MessageInstance`` as the backend-neutral record reconciliation reads."""
    return ProviderMessage(
        sid=str(record.sid),
        status=str(record.status or ""),
        to=str(record.to or ""),
        from_number=str(record.from_ or ""),
        messaging_service_sid=str(record.messaging_service_sid or ""),
        body=str(record.body or ""),
        date_created=record.date_created,
        date_sent=record.date_sent,
        error_code=record.error_code if isinstance(record.error_code, int) else None,
        error_message=str(record.error_message or ""),
    )


def _unavailable(exc: Exception) -> LookupUnavailable:
    return LookupUnavailable(f"Twilio did not answer the lookup: {type(exc).__name__}: {exc}")


def _options(message: OutgoingSms) -> dict[str, Any]:
    """``messages.create``'s arguments besides ``to`` and ``body``."""
    options: dict[str, Any] = {**sender_kwargs(), "validity_period": message.validity_period}
    if message.status_callback:
        options["status_callback"] = with_connection_overrides(message.status_callback)
    return options


class TwilioBackend(BaseSmsBackend):
    """One ``messages.create`` per message through the official SDK (one client per thread).

    Lookups use the Message resource's fetch and its filtered list
    (https://www.twilio.com/docs/messaging/api/message-resource#fetch-a-message-resource,
    #read-multiple-message-resources): filters ``To``, ``From`` and
    ``DateSent>`` ("on or after", at Twilio's own granularity, so the answer
    is filtered again here), newest first, every page followed by the SDK.
    """

    supports_lookup = True

    def missing_settings(self) -> list[str]:
        return missing_twilio_settings()

    def send(self, message: OutgoingSms) -> Accepted | SendFailure:
        try:
            client = get_twilio_client()
        except Exception as exc:  # bad settings: nothing left, so retrying is safe
            return not_set_up(exc)
        started = time.monotonic()
        try:
            created = client.messages.create(to=message.to, body=message.body, **_options(message))
        except Exception as exc:  # one bad message never stops the batch
            return failed(exc, started)
        return accepted(created, message.segments, started)

    async def send_async(self, message: OutgoingSms) -> Accepted | SendFailure:
        """``send`` through the SDK's ``create_async`` on this loop's aiohttp client
        (``twilio_http``, "Async"): the same request, answers and failure classes."""
        try:
            slot = async_clients.lease(_settings_key(), build_async_twilio_client)
        except Exception as exc:  # bad settings: nothing left, so retrying is safe
            return not_set_up(exc)
        started = time.monotonic()
        try:
            created = await slot.client.messages.create_async(
                to=message.to, body=message.body, **_options(message)
            )
        except Exception as exc:  # one bad message never stops the batch
            return failed(exc, started)
        finally:
            await async_clients.release(slot)
        return accepted(created, message.segments, started)

    def fetch(self, sid: str) -> ProviderMessage | None:
        try:
            record = get_twilio_client().messages(sid).fetch()
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise _unavailable(exc) from exc
        except Exception as exc:  # unreachable, timed out, unreadable: conclude nothing
            raise _unavailable(exc) from exc
        return _provider_message(record)

    def find(self, *, to: str, sender: str, sent_after: datetime) -> list[ProviderMessage]:
        # A Messaging Service is not a From: Twilio picks a number from its pool,
        # so the list is filtered by the service on our side.
        by_service = sender.startswith("MG")
        filters: dict[str, Any] = {"to": to, "date_sent_after": sent_after}
        if not by_service:
            filters["from_"] = sender
        try:
            records = get_twilio_client().messages.list(**filters)
        except Exception as exc:  # a partial listing proves nothing: conclude nothing
            raise _unavailable(exc) from exc
        found = [_provider_message(record) for record in records]
        return [
            message
            for message in found
            if (not by_service or message.messaging_service_sid == sender)
            and (message.date_sent is None or message.date_sent >= sent_after)
        ]

    def segment_price(self, country: str) -> SegmentPrice | None:
        """Twilio's Pricing API (``backends.twilio.pricing``); raises on a network error."""
        return fetch_segment_price(
            get_twilio_client(),
            country,
            sender_number_types(
                app_settings.TWILIO_FROM_NUMBER, app_settings.TWILIO_MESSAGING_SERVICE_SID
            ),
        )

    def reported_price(self, provider_id: str) -> tuple[Decimal, str] | None:
        """``messages(sid).fetch()``: ``price`` is negative and often empty until the
        message is final (https://www.twilio.com/docs/messaging/api/message-resource)."""
        return message_price(get_twilio_client().messages(provider_id).fetch())


# -------- signature ---------------------------------------------------------------------

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"


def public_url(request: HttpRequest) -> str:
    """The absolute URL Twilio signed: ``PUBLIC_BASE_URL`` + path (+ query string)."""
    return app_settings.PUBLIC_BASE_URL.rstrip("/") + request.get_full_path()


def has_valid_signature(request: HttpRequest) -> bool:
    """True when ``X-Twilio-Signature`` matches the public URL and every POST parameter."""
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        return False
    token = app_settings.TWILIO_AUTH_TOKEN
    if not token:
        # An empty key would let anyone sign; refuse everything instead.
        logger.error("TWILIO_AUTH_TOKEN is not set: rejecting every Twilio webhook")
        return False
    # Our status callback URLs carry Twilio's connection overrides as a fragment,
    # which never reaches us: see ``overrides`` for why both forms are checked.
    urls = signed_url_candidates(public_url(request))
    return signature_matches(token, urls, request.POST, signature)
