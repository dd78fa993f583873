"""The one way the project builds a ``twilio.rest.Client``: from settings, optionally re-based.

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
"""

import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from requests.adapters import HTTPAdapter
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from notification.conf import app_settings


class BaseUrlHttpClient(TwilioHttpClient):
    """Sends every SDK request to ``base_url`` instead of ``*.twilio.com``."""

    def __init__(self, base_url: str, timeout: float | None = None) -> None:
        super().__init__(pool_connections=True, timeout=timeout)
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"TWILIO_BASE_URL must be an absolute http(s) URL, got {base_url!r}")
        self.scheme = parts.scheme
        self.netloc = parts.netloc
        self.path_prefix = parts.path.rstrip("/")
        if self.session is not None:
            self.session.mount("http://", HTTPAdapter(pool_maxsize=4))

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit(
            (self.scheme, self.netloc, self.path_prefix + parts.path, parts.query, parts.fragment)
        )

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
    return Client(account_sid, auth_token, http_client=http_client)


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
