"""Who an open GraphQL websocket acts for, and telling its sockets when that changes.

A socket is opened with the session cookie and then lives for hours, so the
user found at the handshake cannot be trusted for the socket's whole life:
after a logout, a deactivation or a permission removal it must stop acting
(``ws_guard.SocketGuardMixin`` closes it). Two ways tell it:

* pushed, at once: ``user_logged_out`` sends to the session's group, saving a
  user or changing their permissions or groups sends to the user's group;
  each socket joined both when it opened (messages go through the channel
  layer, so a change made by any process reaches sockets in every process);
* pulled: each operation a client sends, and a periodic timer, load the
  session's user again and compare its ``authority`` with the one the socket
  has; that also covers what sends no signal (an expired or deleted session,
  a group's permissions edited, a database changed by hand).

Group permission edits are not pushed: a group can hold thousands of users,
and the periodic re-check reaches them all within
``GRAPHQL_WS_AUTH_RECHECK_SECONDS``.
"""

import hashlib
import logging
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user, get_user_model, user_logged_out
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save
from django.http.cookie import parse_cookie

logger = logging.getLogger(__name__)

#: Channel layer message types (``ws_guard.SocketGuardMixin.dispatch`` handles them).
SESSION_ENDED = "sms_ws.session_ended"
USER_CHANGED = "sms_ws.user_changed"

Authority = tuple[Any, bool, frozenset[str]]


def user_for_session(session_key: str | None) -> Any:
    """Django's own ``get_user`` (session hash check included) on that session."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # get_user reads only request.session: a stand-in request carrying the session.
    return get_user(SimpleNamespace(session=session))  # type: ignore[arg-type]


def session_key(scope: dict[str, Any]) -> str | None:
    """The session cookie of a websocket's handshake."""
    cookies = [
        value.decode("latin1") for name, value in scope.get("headers", []) if name == b"cookie"
    ]
    return parse_cookie("; ".join(cookies)).get(settings.SESSION_COOKIE_NAME) or None


def authority_of(user: Any) -> Authority | None:
    """What a user may do, as a comparable value; ``None`` for nobody (anonymous, inactive).

    ``get_all_permissions`` includes group permissions and is everything for a
    superuser, so a removed permission, group or superuser flag all show.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    return (user.pk, bool(user.is_superuser), frozenset(user.get_all_permissions()))


def current_user_and_authority(session_key: str | None) -> tuple[Any, Authority | None]:
    """The session's user loaded afresh (no cached permissions) and its authority."""
    user = user_for_session(session_key)
    return user, authority_of(user)


def lost_authority(before: Authority | None, now: Authority | None) -> bool:
    """True when ``now`` may do less than ``before`` (or is someone else, or nobody)."""
    if before is None or now is None:
        return True
    same_user = before[0] == now[0]
    return not same_user or (before[1] and not now[1]) or not before[2] <= now[2]


def session_group(key: str) -> str:
    """The group of a session's sockets; the key is hashed (group names are visible in Redis)."""
    return "sms-ws-session-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def socket_user_group(user_id: Any) -> str:
    return f"sms-ws-user-{user_id}"


def _announce(group: str, message_type: str) -> None:
    """Tell a group's sockets, once the current transaction commits; never raises."""

    def send() -> None:
        try:
            layer = get_channel_layer()
            if layer is not None:
                async_to_sync(layer.group_send)(group, {"type": message_type, "group": group})
        except Exception:
            logger.exception("Could not tell websockets of group %s (%s)", group, message_type)

    transaction.on_commit(send, robust=True)


def _on_logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        _announce(session_group(key), SESSION_ENDED)


def _on_user_saved(
    sender: Any, instance: Any, created: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    # A new user has no sockets; a login only stamps last_login.
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    if instance.pk is not None:
        _announce(socket_user_group(instance.pk), USER_CHANGED)


def _on_user_relations_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any = None, **kwargs: Any
) -> None:
    if action not in ("post_remove", "post_clear", "post_add"):
        return
    user_model = get_user_model()
    if isinstance(instance, user_model):
        _announce(socket_user_group(instance.pk), USER_CHANGED)
    elif pk_set:  # group.user_set.remove(...): the users are in pk_set
        for pk in pk_set:
            _announce(socket_user_group(pk), USER_CHANGED)


def connect_signals() -> None:
    """Connect the pushes; called once from ``NotificationConfig.ready``."""
    user_model = get_user_model()
    user_logged_out.connect(_on_logged_out, dispatch_uid="sms_ws_logged_out")
    post_save.connect(_on_user_saved, sender=user_model, dispatch_uid="sms_ws_user_saved")
    for field in ("user_permissions", "groups"):
        through = getattr(getattr(user_model, field, None), "through", None)
        if through is not None:
            m2m_changed.connect(
                _on_user_relations_changed, sender=through, dispatch_uid=f"sms_ws_user_{field}"
            )
