"""The app's settings: one namespaced dict, its typed description and its defaults.

A host project configures the app with one setting, ``SMS_NOTIFICATIONS = {...}``
(described key by key by :class:`SmsNotificationsSettings`, every key optional),
and gets the defaults of :class:`Resolved` for everything it leaves out. One dict
keeps the app's names (``REDIS_URL``, ``GRAPHIQL``, ``PUBLIC_BASE_URL``,
``LOGIN_MAX_FAILURES``...) out of the host's own namespace, where they would
collide with names the host already uses for its own purposes.

``app_settings.X`` is the one way the app reads a setting. It is typed (mypy sees
``app_settings.TWILIO_SMS_RATE`` as a ``float``: ``app_settings`` is declared a
:class:`Resolved`), lazy (nothing is read before the first access, so importing
the app never needs configured settings) and cached: the dict is merged with the
defaults once, and the cache is dropped on Django's ``setting_changed`` signal, so
``override_settings(SMS_NOTIFICATIONS=...)`` and pytest-django's ``settings``
fixture are seen at once.

Deprecated for one release: the old top-level names (``TWILIO_SMS_RATE = 5`` beside
the host's own settings). A name set at the top level and absent from the dict is
still used, with one :class:`~notification.exceptions.SmsNotificationsDeprecationWarning`
per name per process naming its key; the dict wins when both are set. The system
check ``notification.W004`` lists the old names in use.

Only what the app owns lives here: ``RQ_QUEUES``, ``CHANNEL_LAYERS`` and other
libraries' settings stay top-level. The ranges (``RANGES``) are applied by the check
E004 and by ``config/settings.py``, which maps the environment onto the dict.
"""

import dataclasses
import difflib
import warnings
from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any, TypedDict, cast

from django.conf import settings
from django.core.signals import setting_changed

from notification.exceptions import SmsNotificationsDeprecationWarning

#: The one setting holding the app's configuration.
NAMESPACE = "SMS_NOTIFICATIONS"

#: A price per segment per country: "US=0.0083,*=0.05" or a mapping of code to price.
PriceTable = str | Mapping[str, float | Decimal | str]
#: An amount of money in the price unit (a Decimal keeps its decimals exact).
Amount = float | Decimal


class SmsNotificationsSettings(TypedDict, total=False):
    """What a host may put in ``SMS_NOTIFICATIONS``: each key, with its type.

    Annotate the host's setting with it (``SMS_NOTIFICATIONS:
    SmsNotificationsSettings = {...}``) and mypy checks the keys and their
    types. The meaning and default of each key: :class:`Resolved`.
    """

    SMS_BACKEND: str
    DEFAULT_PHONE_REGION: str
    TWILIO_ACCOUNT_SID: str
    TWILIO_AUTH_TOKEN: str
    TWILIO_FROM_NUMBER: str
    TWILIO_MESSAGING_SERVICE_SID: str
    TWILIO_BASE_URL: str
    TWILIO_REQUEST_TIMEOUT: float
    PUBLIC_BASE_URL: str
    TWILIO_SMS_BATCH_SIZE: int
    TWILIO_SMS_INTERVAL: int
    TWILIO_SMS_QUEUE_TARGET: float
    TWILIO_SMS_RATE: float
    TWILIO_SMS_QUEUE_LIMIT: int
    TWILIO_SMS_CONCURRENCY: int
    TWILIO_SMS_MAX_ATTEMPTS: int
    TWILIO_SMS_CLAIM_TIMEOUT: int
    TWILIO_SMS_VALIDITY_PERIOD: int
    SMS_IDEMPOTENCY_TTL: int
    SMS_RECONCILE_INTERVAL: int
    SMS_RECONCILE_AFTER: int
    TWILIO_STATUS_CALLBACK_OVERRIDES: str
    SMS_HELP_TEXT: str
    SMS_SCHEDULE: str
    SMS_RESULT_WRITE_TIMEOUT: float
    SMS_QUEUE_NAME: str
    REDIS_URL: str
    GRAPHQL_WS_MAX_MESSAGE_BYTES: int
    GRAPHQL_WS_MAX_SOCKETS_PER_USER: int
    GRAPHQL_WS_MAX_SUBSCRIPTIONS: int
    GRAPHQL_WS_INIT_TIMEOUT: float
    GRAPHQL_WS_MESSAGE_RATE: float
    GRAPHQL_WS_AUTH_RECHECK_SECONDS: int
    HTTP_HEAD_TIMEOUT: float
    HTTP_MAX_CONNECTIONS_PER_ADDRESS: int
    GRAPHQL_WS_MAX_SOCKETS: int
    GRAPHQL_WS_MAX_QUEUED_EVENTS: int
    GRAPHQL_MAX_DEPTH: int
    GRAPHQL_MAX_ALIASES: int
    GRAPHQL_MAX_TOKENS: int
    GRAPHQL_MAX_FIELDS: int
    GRAPHQL_MAX_ITEMS: int
    GRAPHQL_INTROSPECTION: bool | None
    GRAPHIQL: bool | None
    GRAPHQL_USER_RATE: int
    SMS_USER_SEGMENTS_PER_HOUR: int
    SMS_QUIET_HOURS: str
    SMS_QUIET_HOURS_BY_REGION: str | Mapping[str, str]
    SMS_ALLOWED_COUNTRIES: str | Collection[str]
    SMS_PRICE_TABLE: PriceTable
    SMS_PRICE_UNIT: str
    SMS_PRICE_REFRESH_SECONDS: int
    SMS_DAILY_SPEND_LIMIT: Amount
    SMS_MONTHLY_SPEND_LIMIT: Amount
    SMS_RECIPIENT_DAILY_LIMIT: int
    LOGIN_MAX_FAILURES: int
    LOGIN_LOCKOUT_SECONDS: int
    METRICS_TOKEN: str
    METRICS_CACHE_SECONDS: float
    READYZ_TIMEOUT: float
    READYZ_CACHE_SECONDS: float


@dataclasses.dataclass(frozen=True, slots=True)
class Resolved:
    """Every setting of the app, with its type and its default: the ONE place of defaults.

    ``tests/app/test_settings_namespace.py`` holds this class and
    :class:`SmsNotificationsSettings` to the same keys and types.
    """

    # Which backend sends SMS (a dotted path, like Django's EMAIL_BACKEND).
    SMS_BACKEND: str = "notification.backends.twilio.TwilioBackend"
    # Region assumed for phone numbers written without a country code.
    DEFAULT_PHONE_REGION: str = "US"
    # Twilio account and sender (the Messaging Service wins when both are set).
    TWILIO_ACCOUNT_SID: str = ""
    TWILIO_AUTH_TOKEN: str = ""
    TWILIO_FROM_NUMBER: str = ""
    TWILIO_MESSAGING_SERVICE_SID: str = ""
    # Root of a Twilio-compatible API (the emulator); empty means api.twilio.com.
    TWILIO_BASE_URL: str = ""
    TWILIO_REQUEST_TIMEOUT: float = 15.0
    # How Twilio reaches us: status callback URLs and webhook signatures use it.
    PUBLIC_BASE_URL: str = "http://127.0.0.1:8000"
    # Sending pace and limits.
    TWILIO_SMS_BATCH_SIZE: int = 100
    # Seconds between scheduled runs; a run paces sends for up to one interval.
    TWILIO_SMS_INTERVAL: int = 300
    # Seconds of drain (x TWILIO_SMS_RATE segments) kept queued at Twilio per sender.
    TWILIO_SMS_QUEUE_TARGET: float = 15.0
    TWILIO_SMS_RATE: float = 1.0
    TWILIO_SMS_QUEUE_LIMIT: int = 36_000
    TWILIO_SMS_CONCURRENCY: int = 8
    TWILIO_SMS_MAX_ATTEMPTS: int = 5
    TWILIO_SMS_CLAIM_TIMEOUT: int = 600
    TWILIO_SMS_VALIDITY_PERIOD: int = 36_000
    # Seconds a create's idempotency key is remembered (then a retry creates anew).
    SMS_IDEMPOTENCY_TTL: int = 86_400
    # Reconciliation (notification.reconciliation): seconds between scheduled passes,
    # and how old a row must be before a pass asks Twilio about it.
    SMS_RECONCILE_INTERVAL: int = 900
    SMS_RECONCILE_AFTER: int = 600
    # Twilio webhook connection overrides (retry count and policy) appended to every
    # StatusCallback URL as its fragment; empty: none (notification.backends.twilio).
    TWILIO_STATUS_CALLBACK_OVERRIDES: str = "rc=3&rp=ct,5xx"
    # The reply to HELP (and to an unknown keyword, none: only HELP gets it).
    SMS_HELP_TEXT: str = "Reply STOP to stop receiving messages, START to receive them again."
    # What runs when: a dotted path to a list of notification.jobs.schedule.Periodic
    # entries; empty: the app's DEFAULT_SCHEDULE. The scheduler keeps Redis matching it.
    SMS_SCHEDULE: str = ""
    # Seconds a batch keeps retrying its result write through a lost database
    # connection (Twilio's answers are held in memory meanwhile); then: unknown.
    SMS_RESULT_WRITE_TIMEOUT: float = 60.0
    # The django-rq queue the send job runs on (it must be in RQ_QUEUES).
    SMS_QUEUE_NAME: str = "sms"
    # Redis for early status callbacks; empty: the SMS queue's own Redis connection.
    REDIS_URL: str = ""
    # GraphQL websockets (notification.graphql.ws.guard); 0 turns a limit off.
    # Largest message a client may send (a subscription is a few hundred bytes).
    GRAPHQL_WS_MAX_MESSAGE_BYTES: int = 65_536
    # Open sockets per user, per server process.
    GRAPHQL_WS_MAX_SOCKETS_PER_USER: int = 20
    # Operations in flight per socket (subscriptions, mostly).
    GRAPHQL_WS_MAX_SUBSCRIPTIONS: int = 20
    # Seconds a new socket may take to send connection_init (both protocols).
    GRAPHQL_WS_INIT_TIMEOUT: float = 10
    # Messages per second one socket may send, pings included (bursts of 5 s of it).
    GRAPHQL_WS_MESSAGE_RATE: float = 10
    # Seconds between re-checks of a socket's session and permissions (logout,
    # deactivation and permission changes are also pushed at once).
    GRAPHQL_WS_AUTH_RECHECK_SECONDS: int = 60
    # The web server (notification.http_guard, uvicorn --http): seconds a connection
    # has to send a whole request head, and connections per client address (0: off).
    HTTP_HEAD_TIMEOUT: float = 10.0
    HTTP_MAX_CONNECTIONS_PER_ADDRESS: int = 256
    # Open websockets per server process (http_guard refuses one more with 503).
    GRAPHQL_WS_MAX_SOCKETS: int = 15_000
    # Changes one subscription may have waiting to be sent; a subscriber that does
    # not read that many is dropped (an error ends its subscription), not buffered.
    GRAPHQL_WS_MAX_QUEUED_EVENTS: int = 1000
    # Cost limits of one GraphQL document (0 turns a limit off); README "Security".
    GRAPHQL_MAX_DEPTH: int = 10
    GRAPHQL_MAX_ALIASES: int = 15
    GRAPHQL_MAX_TOKENS: int = 2000
    # Fields of a document once its fragments are expanded (what execution would visit).
    GRAPHQL_MAX_FIELDS: int = 500
    # Items in any one list of a request (variables or document); all lists
    # together may hold twice as many. The bulk create's 1,000 items fit.
    GRAPHQL_MAX_ITEMS: int = 1000
    # Schema introspection and the GraphiQL page (None: follow DEBUG).
    GRAPHQL_INTROSPECTION: bool | None = None
    GRAPHIQL: bool | None = None
    # Requests per minute per user on the SMS-sending mutations and smsSegments (0: off).
    GRAPHQL_USER_RATE: int = 60
    # SMS segments one user may queue per hour (0: off). 2,000 is two full bulk
    # requests of one-segment messages: room for a real campaign, not for a
    # compromised account to spend hundreds of dollars in a minute.
    SMS_USER_SEGMENTS_PER_HOUR: int = 2000
    # --- Compliance and cost guardrails (README "Compliance and cost") ---------
    # Quiet hours for MARKETING messages in the recipient's local time; "" turns off.
    SMS_QUIET_HOURS: str = "21:00-08:00"
    # Extra, stricter windows per region: "US-FL=08:00-20:00,US-NJ=08:00-20:00" or a dict.
    SMS_QUIET_HOURS_BY_REGION: str | Mapping[str, str] = ""
    # ISO 3166 alpha-2 codes SMS may go to ("*": all); "": DEFAULT_PHONE_REGION's country.
    SMS_ALLOWED_COUNTRIES: str | Collection[str] = ""
    # Price per segment overriding the backend's ("US=0.0083,*=0.05" or a dict).
    SMS_PRICE_TABLE: PriceTable = ""
    SMS_PRICE_UNIT: str = "USD"
    # Seconds a country's price from the Pricing API is kept per process.
    SMS_PRICE_REFRESH_SECONDS: int = 86_400
    # Estimated spend allowed per UTC day / month, in the price unit (0: off).
    SMS_DAILY_SPEND_LIMIT: Amount = 0
    SMS_MONTHLY_SPEND_LIMIT: Amount = 0
    # Messages one number may be sent in any 24 hours, counted at create (0: off).
    # Off by default: a sensible cap depends on the product (one-time codes,
    # alerts); README "Compliance and cost" suggests values.
    SMS_RECIPIENT_DAILY_LIMIT: int = 0
    # Failed logins (per account, and per client address) that lock logins out.
    LOGIN_MAX_FAILURES: int = 10
    LOGIN_LOCKOUT_SECONDS: int = 900
    # Operations (notification.ops): the bearer token /metrics requires (empty: /metrics
    # is off), seconds its database gauges are cached, the readiness probe's per-check
    # timeout and how long its answer is reused.
    METRICS_TOKEN: str = ""
    METRICS_CACHE_SECONDS: float = 10.0
    READYZ_TIMEOUT: float = 1.0
    READYZ_CACHE_SECONDS: float = 1.0


#: Each setting's default, by name (for messages and hints; reads go through ``app_settings``).
DEFAULTS: dict[str, object] = {field.name: field.default for field in dataclasses.fields(Resolved)}

# Each numeric setting's range, inclusive: (minimum, maximum or None). The ONE place
# of these rules: the system check E004 (notification/checks.py) applies them to the
# settings in force, config/settings.py to the environment as it starts.
# A minimum of 0 means 0 turns the limit off; an interval, a size or a timeout of 0
# would stall or spin the loop that reads it, so those start above 0.
RANGES: dict[str, tuple[float, float | None]] = {
    "TWILIO_SMS_BATCH_SIZE": (1, None),
    # A scheduled run paces sends for one interval less a margin of a second.
    "TWILIO_SMS_INTERVAL": (2, None),
    "TWILIO_SMS_QUEUE_TARGET": (0.1, None),
    "TWILIO_SMS_RATE": (0.001, None),
    "TWILIO_SMS_QUEUE_LIMIT": (1, None),
    # Threads sending at once per run: more only queue behind Twilio's rate.
    "TWILIO_SMS_CONCURRENCY": (1, 64),
    "TWILIO_SMS_MAX_ATTEMPTS": (1, None),
    "TWILIO_SMS_CLAIM_TIMEOUT": (1, None),
    # Twilio's ValidityPeriod: 1 to 36,000 seconds
    # (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource).
    "TWILIO_SMS_VALIDITY_PERIOD": (1, 36_000),
    "TWILIO_REQUEST_TIMEOUT": (0.1, None),
    "SMS_IDEMPOTENCY_TTL": (1, None),
    "SMS_RESULT_WRITE_TIMEOUT": (0, None),
    "SMS_RECONCILE_INTERVAL": (1, None),
    "SMS_RECONCILE_AFTER": (0, None),
    "SMS_PRICE_REFRESH_SECONDS": (1, None),
    "GRAPHQL_WS_MAX_MESSAGE_BYTES": (0, None),
    "GRAPHQL_WS_MAX_SOCKETS_PER_USER": (0, None),
    "GRAPHQL_WS_MAX_SUBSCRIPTIONS": (0, None),
    "GRAPHQL_WS_INIT_TIMEOUT": (0.1, None),
    "GRAPHQL_WS_MESSAGE_RATE": (0, None),
    "GRAPHQL_WS_AUTH_RECHECK_SECONDS": (0, None),
    "GRAPHQL_WS_MAX_QUEUED_EVENTS": (1, None),
    "HTTP_HEAD_TIMEOUT": (0, None),
    "HTTP_MAX_CONNECTIONS_PER_ADDRESS": (0, None),
    "GRAPHQL_WS_MAX_SOCKETS": (0, None),
    "GRAPHQL_MAX_DEPTH": (0, None),
    "GRAPHQL_MAX_ALIASES": (0, None),
    "GRAPHQL_MAX_TOKENS": (0, None),
    "GRAPHQL_MAX_FIELDS": (0, None),
    "GRAPHQL_MAX_ITEMS": (0, None),
    "GRAPHQL_USER_RATE": (0, None),
    "SMS_USER_SEGMENTS_PER_HOUR": (0, None),
    "SMS_DAILY_SPEND_LIMIT": (0, None),
    "SMS_MONTHLY_SPEND_LIMIT": (0, None),
    "SMS_RECIPIENT_DAILY_LIMIT": (0, None),
    "LOGIN_MAX_FAILURES": (0, None),
    "LOGIN_LOCKOUT_SECONDS": (1, None),
    "METRICS_CACHE_SECONDS": (0, None),
    "READYZ_TIMEOUT": (0.05, None),
    "READYZ_CACHE_SECONDS": (0, None),
}


def out_of_range(name: str, value: object) -> str | None:
    """What ``value`` must be when out of ``name``'s range; ``None`` when in it or unranged."""
    if name not in RANGES:
        return None
    minimum, maximum = RANGES[name]
    if (
        not isinstance(value, bool)
        and isinstance(value, int | float | Decimal)
        and minimum <= value
        and (maximum is None or value <= maximum)
    ):
        return None
    if maximum is None:
        return f"a number of at least {minimum}"
    return f"a number from {minimum} to {maximum}"


_resolved: Resolved | None = None
_warned: set[str] = set()


def _namespaced() -> Mapping[str, Any]:
    """``SMS_NOTIFICATIONS`` when it is a mapping; anything else is ignored (check E008)."""
    value = getattr(settings, NAMESPACE, None)
    return value if isinstance(value, Mapping) else {}


def deprecated_names_in_use() -> list[str]:
    """Old top-level names the host sets that the dict does not override, sorted."""
    namespaced = _namespaced()
    return sorted(name for name in DEFAULTS if name not in namespaced and hasattr(settings, name))


def unknown_keys() -> dict[str, str | None]:
    """Keys of ``SMS_NOTIFICATIONS`` the app does not know, each with its closest known key.

    A misspelt key is otherwise silently ignored and its default used: a
    ``TWILIO_SMS_RAET`` in production sends at the default pace.
    """
    return {
        key: next(iter(difflib.get_close_matches(str(key), DEFAULTS, n=1)), None)
        for key in _namespaced()
        if key not in DEFAULTS
    }


def _warn_deprecated(name: str) -> None:
    """One warning per old name per process: a warning on every read would drown the log."""
    if name in _warned:
        return
    _warned.add(name)
    warnings.warn(
        SmsNotificationsDeprecationWarning(
            f"The top-level setting {name} is deprecated; set {NAMESPACE}[{name!r}] instead "
            "(the environment variable keeps its name)."
        ),
        stacklevel=4,
    )


def resolve() -> Resolved:
    """The settings now in force: the dict, then deprecated top-level names, then defaults."""
    global _resolved
    if _resolved is None:
        namespaced = _namespaced()
        values = {name: namespaced[name] for name in DEFAULTS if name in namespaced}
        for name in deprecated_names_in_use():
            _warn_deprecated(name)
            values[name] = getattr(settings, name)
        _resolved = Resolved(**values)
    return _resolved


def _drop_cache(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: the next read merges the changed settings anew."""
    global _resolved
    if setting == NAMESPACE or setting in DEFAULTS:
        _resolved = None


setting_changed.connect(_drop_cache, dispatch_uid="notification.conf")


class AppSettings:
    """``app_settings.NAME``: the setting in force (see :func:`resolve`)."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"notification has no setting {name!r}")
        return getattr(resolve(), name)

    def __dir__(self) -> list[str]:
        return sorted(DEFAULTS)


#: Declared a :class:`Resolved` for the type checker; at run time a lazy view of it.
app_settings = cast(Resolved, AppSettings())
