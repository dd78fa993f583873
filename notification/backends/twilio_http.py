"""The SDK's HTTP clients: the sync one's session minus a per-request environment scan,
and the async one the send job uses.

``TwilioHttpClient.request`` calls ``Session.merge_environment_settings`` for every
message: requests then reads the proxy variables (``getproxies_environment`` walks
and decodes all of ``os.environ``, twice), checks ``no_proxy`` against the host and
looks up ``REQUESTS_CA_BUNDLE``, about a twentieth of a send worker's CPU at 0 ms
latency (README, "Benchmarks"), for an answer that only depends on the URL's
origin and the arguments.

``RememberingSession`` asks requests once per (origin, arguments) and keeps the
answer for the life of the session, i.e. of the sending thread's SDK client.
Which proxy and which CA bundle are used does not change: they are requests' own
answers from the same environment. Only a change of the environment *after* a
thread's first request to an origin is not seen, as the SDK itself already does
for proxies (it passes its own ``proxy`` dict, which requests fills from the
environment on the first call and which then wins on every later one).

Async (``RebasedAsyncHttpClient``, ``AsyncClients``):

The send job's SDK client is async (``TwilioBackend.send_async``): one event loop keeps
the requests in flight for about a third of the CPU of a thread each. But
``AsyncTwilioHttpClient`` (aiohttp) as the SDK ships it would be wrong here in four
ways, each fixed by ``RebasedAsyncHttpClient``:

* it never applies its ``timeout`` (the SDK passes ``timeout=None`` per request and
  aiohttp's default is 5 minutes): here ``TWILIO_REQUEST_TIMEOUT`` bounds the connect
  and each read, as ``requests`` does with one number, so a refused or unreachable
  host is a "could not connect" (nothing left) and a held answer a read timeout
  (ambiguous), as on the sync path (``twilio_payloads.classify_exception``);
* with ``max_retries`` it wraps the session in aiohttp-retry, which would resend a POST
  whose answer was lost: a duplicate SMS. No retry client is ever made here, and
  aiohttp itself retries a broken keep-alive connection only for idempotent methods
  (never a POST);
* it passes ``auth=`` to aiohttp, deprecated there (a ``DeprecationWarning`` per
  request): the Authorization header is set here instead;
* with ``trust_env`` aiohttp would look up the proxy in a thread for every request.
  Here the proxy is ``requests``' own answer for the origin (``HTTP(S)_PROXY``,
  ``NO_PROXY``: the sync path's route), asked once per client, and the CA bundle is
  requests' too (``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, else certifi's).

Plus the ``TWILIO_BASE_URL`` re-basing of ``BaseUrlHttpClient``, and the form encoded
here (``form_body``): given a dict, aiohttp builds a ``FormData`` per request, whose
constructor makes a multipart writer (with a ``uuid4`` boundary) that a plain form
never uses: a tenth of the sending loop's CPU at 0 ms latency.

``AsyncClients`` keeps one SDK client per event loop for the current settings; a
client whose settings were replaced is closed once its last request is answered, and
the current one when the process exits (``loops.at_exit``).
"""

import asyncio
import os
import ssl
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests.utils
from aiohttp import ClientSession, ClientTimeout, TCPConnector, encode_basic_auth
from requests import Session
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response

from notification.loops import at_exit


class RememberingSession(Session):
    """A ``requests.Session`` whose environment settings are looked up once per origin."""

    def __init__(self) -> None:
        super().__init__()
        self._merged: dict[tuple, dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        parts = urlsplit(str(url))
        key = (
            parts.scheme,
            parts.netloc,
            tuple(sorted((proxies or {}).items())),
            stream,
            verify,
            cert if not isinstance(cert, list) else tuple(cert),
        )
        merged = self._merged.get(key)
        if merged is None:
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._merged[key] = merged
        # A copy: the caller passes it on as keyword arguments, never to be shared.
        return {**merged, "proxies": dict(merged["proxies"] or {})}


def remembering(session: Session | None) -> Session | None:
    """A ``RememberingSession`` with ``session``'s adapters (the SDK's pool sizes)."""
    if session is None:
        return None
    replacement = RememberingSession()
    replacement.adapters = session.adapters
    return replacement


# -------- async -------------------------------------------------------------------------


def split_base_url(base_url: str) -> tuple[str, str, str]:
    """``TWILIO_BASE_URL`` as (scheme, netloc, path prefix); raises on a relative URL."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"TWILIO_BASE_URL must be an absolute http(s) URL, got {base_url!r}")
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


def rebase(url: str, base: tuple[str, str, str] | None) -> str:
    """``url`` on ``base`` (scheme, host, port, plus a path prefix); as is without one."""
    if base is None:
        return url
    parts = urlsplit(url)
    return urlunsplit((base[0], base[1], base[2] + parts.path, parts.query, parts.fragment))


#: The content type aiohttp's ``FormData`` gives a UTF-8 form.
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_FORM_SCALARS = (str, int, float)


def form_body(data: dict[str, object]) -> bytes | None:
    """``data`` as the bytes aiohttp's ``FormData`` would send for it (UTF-8,
    ``doseq``), or ``None`` when a value is not a plain scalar or a list of them
    (a file, bytes: aiohttp's multipart path decides then)."""
    for value in data.values():
        items = value if isinstance(value, list | tuple) else (value,)
        if not all(isinstance(item, _FORM_SCALARS) for item in items):
            return None
    return urlencode(list(data.items()), doseq=True, encoding="utf-8").encode()


def requests_ca_context() -> ssl.SSLContext:
    """The CA bundle requests would verify with in this environment."""
    bundle = (
        os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or requests.utils.DEFAULT_CA_BUNDLE_PATH
    )
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


class RebasedAsyncHttpClient(AsyncTwilioHttpClient):
    """The SDK's aiohttp client: re-based, timed out, never retrying (module docstring)."""

    def __init__(self, base_url: str = "", timeout: float | None = None) -> None:
        super().__init__(pool_connections=False, timeout=timeout, max_retries=None)
        self.base = split_base_url(base_url) if base_url else None
        self.request_timeout = ClientTimeout(
            total=None, connect=None, sock_connect=timeout, sock_read=timeout
        )
        self._auth: tuple[tuple[str, str], str] | None = None
        self._proxies: dict[tuple[str, str], tuple[str | None, dict[str, str]]] = {}
        # Created on the loop that will use it (aiohttp binds a session to its loop).
        self.session: ClientSession | None = None

    def _session(self) -> ClientSession:
        if self.session is None:
            https = self.base is None or self.base[0] == "https"
            connector = TCPConnector(ssl=requests_ca_context() if https else True)
            self.session = ClientSession(
                connector=connector, timeout=self.request_timeout, trust_env=False
            )
        return self.session

    def _proxy(self, url: str) -> tuple[str | None, dict[str, str]]:
        """requests' proxy for ``url``'s origin (and its credentials as a header), once."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        if origin not in self._proxies:
            proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
            headers: dict[str, str] = {}
            if proxy:
                proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
                if proxy_parts.username is not None:
                    headers["Proxy-Authorization"] = encode_basic_auth(
                        proxy_parts.username, proxy_parts.password or ""
                    )
                    proxy_parts = proxy_parts._replace(netloc=proxy_parts.netloc.rpartition("@")[2])
                proxy = urlunsplit(proxy_parts)
            self._proxies[origin] = (proxy or None, headers)
        return self._proxies[origin]

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        url = rebase(url, self.base)
        headers = dict(headers or {})
        if auth is not None:
            if self._auth is None or self._auth[0] != auth:
                self._auth = (auth, encode_basic_auth(auth[0], auth[1]))
            headers["Authorization"] = self._auth[1]
        proxy, proxy_headers = self._proxy(url)
        body: bytes | dict[str, object] | None = data
        if data is not None and (encoded := form_body(data)) is not None:
            body = encoded
            headers.setdefault("Content-Type", FORM_CONTENT_TYPE)
        async with self._session().request(
            method.upper(),
            url,
            params=cast(Any, params),
            data=body,
            headers=headers,
            allow_redirects=allow_redirects,
            proxy=proxy,
            proxy_headers=proxy_headers or None,
            timeout=(
                ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
                if timeout
                else self.request_timeout
            ),
        ) as response:
            text = await response.text()
        return Response(response.status, text, response.headers)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


@dataclass
class Slot:
    """A loop's SDK client and the requests using it now."""

    key: Hashable
    client: Any
    in_flight: int = 0
    retired: bool = False
    closing: "asyncio.Task[None] | None" = None


class AsyncClients:
    """One SDK client per event loop for the current settings key (module docstring)."""

    def __init__(self) -> None:
        self._slots: dict[asyncio.AbstractEventLoop, Slot] = {}

    def lease(self, key: Hashable, build: Callable[[], Any]) -> Slot:
        """The running loop's client for ``key`` (built on first use), held until
        ``release``; raises what ``build`` raises."""
        loop = asyncio.get_running_loop()
        slot = self._slots.get(loop)
        if slot is None or slot.key != key:
            replaced, slot = slot, Slot(key, build())
            self._slots[loop] = slot
            if replaced is None:
                at_exit(loop, lambda: self._close_current(loop))
            else:
                replaced.retired = True
                if not replaced.in_flight:
                    replaced.closing = loop.create_task(replaced.client.http_client.close())
        slot.in_flight += 1
        return slot

    async def release(self, slot: Slot) -> None:
        """The request is answered; a replaced client closes with its last one."""
        slot.in_flight -= 1
        if slot.retired and not slot.in_flight:
            await slot.client.http_client.close()

    async def _close_current(self, loop: asyncio.AbstractEventLoop) -> None:
        slot = self._slots.pop(loop, None)
        if slot is not None:
            await slot.client.http_client.close()
