"""Login lockout: ``LOGIN_MAX_FAILURES`` failed logins within ``LOGIN_LOCKOUT_SECONDS``,
for one account or from one client address, lock logins out until that window ends.

It sits in Django's authentication, so the GraphQL ``login`` mutation and the admin's
login form are throttled alike (and any other ``authenticate()`` caller):

* ``LoginLockoutBackend``, first in ``AUTHENTICATION_BACKENDS``, refuses while either
  counter is full (``PermissionDenied`` stops ``authenticate()`` before the password is
  checked, so a locked-out guess learns nothing, right or wrong);
* ``user_login_failed`` counts a failure for the account and for the address;
  ``user_logged_in`` clears the account's counter (not the address's: one address
  trying many accounts stays limited). ``NotificationConfig.ready`` connects both.

Keyed by account *and* by address: per account alone lets one address try a password
on every account; per address alone lets a botnet guess one account's password.
Counters live in Redis (``counters``), so the limit holds across web processes.
"""

import hashlib
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from notification.conf import app_settings
from notification.exceptions import SmsNotificationError
from notification.throttle import limits as counters


class LoginLockedOut(SmsNotificationError, PermissionDenied):
    """Logins for this account or from this address are locked for ``retry_after`` s."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(
            f"Too many failed logins: try again in {retry_after} seconds.",
        )


def _account_counter(username: object) -> str:
    # Hashed: usernames are client input of any length and content.
    digest = hashlib.sha256(str(username).encode("utf-8", "replace")).hexdigest()
    return f"login:account:{digest}"


def _address_counter(request: HttpRequest | None) -> str | None:
    meta = getattr(request, "META", None) or {}
    address = meta.get("REMOTE_ADDR")
    return f"login:address:{address}" if address else None


def _counters(request: HttpRequest | None, username: object) -> list[str]:
    names = [_account_counter(username)] if username is not None else []
    address = _address_counter(request)
    return [*names, address] if address else names


def lockout_retry_after(request: HttpRequest | None, username: object) -> int | None:
    """Seconds until logins for ``username`` from this request's address may resume."""
    limit = app_settings.LOGIN_MAX_FAILURES
    if not limit:
        return None
    waits = [
        window.retry_after
        for name in _counters(request, username)
        if (window := counters.peek(name)) is not None and window.total >= limit
    ]
    return max(waits) if waits else None


def check_login_allowed(request: HttpRequest | None, username: object) -> None:
    """Raise ``LoginLockedOut`` while the account or the address is locked out."""
    retry_after = lockout_retry_after(request, username)
    if retry_after is not None:
        raise LoginLockedOut(retry_after)


class LoginLockoutBackend:
    """An authentication backend that authenticates nobody and refuses locked logins."""

    def authenticate(self, request: HttpRequest | None, username: Any = None, **kwargs: Any):
        check_login_allowed(request, username)
        return None

    # No ``get_user``: sessions never name this backend (it authenticates nobody), and
    # without the method Django's test client and ``login()`` pass over it.


#: The dotted path a host puts first in ``AUTHENTICATION_BACKENDS`` (system check E002/W001).
LOCKOUT_BACKEND_PATH = f"{__name__}.{LoginLockoutBackend.__qualname__}"


def record_failed_login(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """``user_login_failed`` receiver: one more failure for the account and the address."""
    if not app_settings.LOGIN_MAX_FAILURES:
        return
    for name in _counters(request, credentials.get("username")):
        counters.count(name, 1, app_settings.LOGIN_LOCKOUT_SECONDS)


def clear_account_failures(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """``user_logged_in`` receiver: the account's own failures are forgiven."""
    counters.clear(_account_counter(user.get_username()))
