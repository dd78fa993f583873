"""Twilio's webhook connection overrides on our status callback URLs.

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
"""

from notification.conf import app_settings


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
