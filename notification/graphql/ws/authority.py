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

Ws parsing (was ``notification.graphql.ws_parsing``):

Parsing and validating websocket operations off the event loop.

Every websocket of a server process shares one event loop with every HTTP
request and status callback it serves under ASGI. graphql-core parses and
validates synchronously, so one large document (600,000 aliases in 11 MB)
held the loop for 24 s. Here both run in a worker thread: the loop keeps
serving while a big document is parsed (the GIL is handed back and forth
every few milliseconds). The size cap (``GRAPHQL_WS_MAX_MESSAGE_BYTES``)
bounds how big a document can be in the first place. The cost limits
(``query_limits``: token limit at parse, then depth, aliases, introspection)
are checked in the same thread: each walks the whole document, and a check
left on the loop stalled it for a third of the parse time.

Only the websocket consumer's copy of the schema carries the extension
(``websocket_schema``): its hooks are async, and the HTTP view executes
synchronously, where strawberry refuses async hooks.

Ws pace (was ``notification.graphql.ws_pace``):

How fast a websocket may talk, and how long it may stay silent before it says hello.

* **Message rate** (``GRAPHQL_WS_MESSAGE_RATE`` messages per second, with a burst
  of ``MESSAGE_BURST_SECONDS`` times that): every client message costs the
  server a JSON decode and a dispatch (a ``ping`` about 0.5 ms of CPU), and
  nothing else bounds how many a socket sends. A token bucket lets a page open
  its subscriptions at once and answer keep-alives for ever, and closes a socket
  that keeps sending faster (4429, "Too many messages").
* **connection_init wait** (``GRAPHQL_WS_INIT_TIMEOUT`` seconds): strawberry
  closes a ``graphql-transport-ws`` socket that has not sent ``connection_init``
  in time (4408), but not a legacy ``graphql-ws`` one: an idle legacy socket
  held a connection (and a place under ``--limit-concurrency``) for ever. The
  consumer passes the same timeout to strawberry and closes a legacy socket
  with the same code.
"""

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
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
from graphql import GraphQLError, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from notification.graphql.query_limits import limit_errors

# -------- ws_authority ------------------------------------------------------------------

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


# -------- ws_parsing --------------------------------------------------------------------


class ParseAndValidateInThread(SchemaExtension):
    """Fills ``graphql_document`` and ``pre_execution_errors`` from a worker thread.

    strawberry then skips its own parse and validation (it checks both). A
    document that does not parse is left to strawberry, which parses it again
    on the loop to report the syntax error its usual way: the size cap keeps
    that cheap.
    """

    async def on_parse(self) -> AsyncIterator[None]:
        # Runs after ``QueryLimits.on_parse`` has set the token limit, and does the cost
        # checks and the validation in the same thread: each walks the whole document,
        # and a walk left on the loop stalls it as long as parsing would.
        context = self.execution_context
        if context.graphql_document is None and context.query:
            with contextlib.suppress(GraphQLError):
                await asyncio.to_thread(_parse_and_validate, context)
        yield


def _parse_and_validate(context: Any) -> None:
    """Parse, check the cost limits, then validate (strawberry skips what is filled in)."""
    context.graphql_document = parse(context.query, **context.parse_options)
    if context.validation_rules and context.pre_execution_errors is None:
        context.pre_execution_errors = limit_errors(context) or validate_document(
            context.schema._schema, context.graphql_document, context.validation_rules
        )


def websocket_schema(schema: Any) -> Any:
    """A shallow copy of ``schema`` whose operations parse and validate in a thread."""
    threaded = copy.copy(schema)
    threaded.extensions = (*schema.extensions, ParseAndValidateInThread)
    return threaded


# -------- ws_pace -----------------------------------------------------------------------

#: A full bucket holds this many seconds of the sustained rate.
MESSAGE_BURST_SECONDS = 5
#: Close codes: graphql-transport-ws' own for the init timeout; 4429 (HTTP's 429 in
#: the range RFC 6455 leaves to applications) for a socket sending too fast.
CLOSE_INIT_TIMEOUT = 4408
CLOSE_TOO_MANY_MESSAGES = 4429


class MessageBucket:
    """A token bucket: ``rate`` messages per second, ``rate * MESSAGE_BURST_SECONDS`` at once.

    ``rate`` 0 lets everything through. Time is ``time.monotonic``: a clock step
    neither empties nor fills it.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = rate * MESSAGE_BURST_SECONDS
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def allow(self) -> bool:
        """Take one message's token; False when the socket has none left."""
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def is_connection_init(text_data: str) -> bool:
    """Whether a client message is ``connection_init`` (a cheap test before JSON)."""
    if "connection_init" not in text_data:
        return False
    try:
        message = json.loads(text_data)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "connection_init"
