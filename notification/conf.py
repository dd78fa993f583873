"""The app's settings, with their defaults: the one module that reads them.

A host project sets only what it needs (usually ``TWILIO_ACCOUNT_SID``,
``TWILIO_AUTH_TOKEN`` and ``TWILIO_FROM_NUMBER``) and gets the defaults below
for everything else; without them every ``settings.X`` read in the app would be
an ``AttributeError`` in a project that does not copy this project's
``config/settings.py``.

Reads are lazy (``app_settings.X`` looks at ``django.conf.settings`` on every
access), so ``override_settings`` in tests and settings changed at run time are
seen at once. The project's ``config/settings.py`` fills these settings from
environment variables of the same names; the app itself never reads the
environment.
"""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Which backend sends SMS (a dotted path, like Django's EMAIL_BACKEND).
    "SMS_BACKEND": "notification.backends.twilio.TwilioBackend",
    # Region assumed for phone numbers written without a country code.
    "DEFAULT_PHONE_REGION": "US",
    # Twilio account and sender (the Messaging Service wins when both are set).
    "TWILIO_ACCOUNT_SID": "",
    "TWILIO_AUTH_TOKEN": "",
    "TWILIO_FROM_NUMBER": "",
    "TWILIO_MESSAGING_SERVICE_SID": "",
    # Root of a Twilio-compatible API (the emulator); empty means api.twilio.com.
    "TWILIO_BASE_URL": "",
    "TWILIO_REQUEST_TIMEOUT": 15.0,
    # How Twilio reaches us: status callback URLs and webhook signatures use it.
    "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    # Sending pace and limits.
    "TWILIO_SMS_BATCH_SIZE": 100,
    # Seconds between scheduled runs; a run paces sends for up to one interval.
    "TWILIO_SMS_INTERVAL": 300,
    # Seconds of drain (x TWILIO_SMS_RATE segments) kept queued at Twilio per sender.
    "TWILIO_SMS_QUEUE_TARGET": 15.0,
    "TWILIO_SMS_RATE": 1.0,
    "TWILIO_SMS_QUEUE_LIMIT": 36_000,
    "TWILIO_SMS_CONCURRENCY": 8,
    "TWILIO_SMS_MAX_ATTEMPTS": 5,
    "TWILIO_SMS_CLAIM_TIMEOUT": 600,
    "TWILIO_SMS_VALIDITY_PERIOD": 36_000,
    # Seconds a create's idempotency key is remembered (then a retry creates anew).
    "SMS_IDEMPOTENCY_TTL": 86_400,
    # Reconciliation (notification.reconciliation): seconds between scheduled passes,
    # and how old a row must be before a pass asks Twilio about it.
    "SMS_RECONCILE_INTERVAL": 900,
    "SMS_RECONCILE_AFTER": 600,
    # Twilio webhook connection overrides (retry count and policy) appended to every
    # StatusCallback URL as its fragment; empty: none (notification.backends.twilio.overrides).
    "TWILIO_STATUS_CALLBACK_OVERRIDES": "rc=3&rp=ct,5xx",
    # The reply to HELP (and to an unknown keyword, none: only HELP gets it).
    "SMS_HELP_TEXT": "Reply STOP to stop receiving messages, START to receive them again.",
    # What runs when: a dotted path to a list of notification.jobs.schedule.Periodic
    # entries; empty: the app's DEFAULT_SCHEDULE. The scheduler keeps Redis matching it.
    "SMS_SCHEDULE": "",
    # Seconds a batch keeps retrying its result write through a lost database
    # connection (Twilio's answers are held in memory meanwhile); then: unknown.
    "SMS_RESULT_WRITE_TIMEOUT": 60.0,
    # The django-rq queue the send job runs on (it must be in RQ_QUEUES).
    "SMS_QUEUE_NAME": "sms",
    # Redis for early status callbacks; empty: the SMS queue's own Redis connection.
    "REDIS_URL": "",
    # GraphQL websockets (notification.graphql.ws_guard); 0 turns a limit off.
    # Largest message a client may send (a subscription is a few hundred bytes).
    "GRAPHQL_WS_MAX_MESSAGE_BYTES": 65_536,
    # Open sockets per user, per server process.
    "GRAPHQL_WS_MAX_SOCKETS_PER_USER": 20,
    # Operations in flight per socket (subscriptions, mostly).
    "GRAPHQL_WS_MAX_SUBSCRIPTIONS": 20,
    # Seconds a new socket may take to send connection_init (both protocols).
    "GRAPHQL_WS_INIT_TIMEOUT": 10,
    # Messages per second one socket may send, pings included (bursts of 5 s of it).
    "GRAPHQL_WS_MESSAGE_RATE": 10,
    # Seconds between re-checks of a socket's session and permissions (logout,
    # deactivation and permission changes are also pushed at once).
    "GRAPHQL_WS_AUTH_RECHECK_SECONDS": 60,
    # The web server (notification.http_guard, uvicorn --http): seconds a connection
    # has to send a whole request head, and connections per client address (0: off).
    "HTTP_HEAD_TIMEOUT": 10.0,
    "HTTP_MAX_CONNECTIONS_PER_ADDRESS": 256,
    # Open websockets per server process (notification.http_guard): past it the
    # handshake is refused 503 before the application runs. uvicorn's own
    # --limit-concurrency then counts HTTP requests only.
    "GRAPHQL_WS_MAX_SOCKETS": 15_000,
    # Changes one subscription may have waiting to be sent; a subscriber that does
    # not read that many is dropped (an error ends its subscription), not buffered.
    "GRAPHQL_WS_MAX_QUEUED_EVENTS": 1000,
    # Cost limits of one GraphQL document (0 turns a limit off); README "Security".
    "GRAPHQL_MAX_DEPTH": 10,
    "GRAPHQL_MAX_ALIASES": 15,
    "GRAPHQL_MAX_TOKENS": 2000,
    # Fields of a document once its fragments are expanded (what execution would visit).
    "GRAPHQL_MAX_FIELDS": 500,
    # Items in any one list of a request (variables or document); all lists
    # together may hold twice as many. The bulk create's 1,000 items fit.
    "GRAPHQL_MAX_ITEMS": 1000,
    # Schema introspection and the GraphiQL page (None: follow DEBUG).
    "GRAPHQL_INTROSPECTION": None,
    "GRAPHIQL": None,
    # Requests per minute per user on the SMS-sending mutations and smsSegments (0: off).
    "GRAPHQL_USER_RATE": 60,
    # SMS segments one user may queue per hour (0: off). 2,000 is two full bulk
    # requests of one-segment messages: room for a real campaign, not for a
    # compromised account to spend hundreds of dollars in a minute.
    "SMS_USER_SEGMENTS_PER_HOUR": 2000,
    # --- Compliance and cost guardrails (README "Compliance and cost") ---------
    # Quiet hours for MARKETING messages in the recipient's local time; "" turns off.
    "SMS_QUIET_HOURS": "21:00-08:00",
    # Extra, stricter windows per region: "US-FL=08:00-20:00,US-NJ=08:00-20:00" or a dict.
    "SMS_QUIET_HOURS_BY_REGION": "",
    # ISO 3166 alpha-2 codes SMS may go to ("*": all); "": DEFAULT_PHONE_REGION's country.
    "SMS_ALLOWED_COUNTRIES": "",
    # Price per segment overriding the backend's ("US=0.0083,*=0.05" or a dict).
    "SMS_PRICE_TABLE": "",
    "SMS_PRICE_UNIT": "USD",
    # Seconds a country's price from the Pricing API is kept per process.
    "SMS_PRICE_REFRESH_SECONDS": 86_400,
    # Estimated spend allowed per UTC day / month, in the price unit (0: off).
    "SMS_DAILY_SPEND_LIMIT": 0,
    "SMS_MONTHLY_SPEND_LIMIT": 0,
    # Messages one number may be sent in any 24 hours, counted at create (0: off).
    # Off by default: a sensible cap depends on the product (one-time codes,
    # alerts); README "Compliance and cost" suggests values.
    "SMS_RECIPIENT_DAILY_LIMIT": 0,
    # Failed logins (per account, and per client address) that lock logins out.
    "LOGIN_MAX_FAILURES": 10,
    "LOGIN_LOCKOUT_SECONDS": 900,
    # Operations (notification.ops): the bearer token /metrics requires (empty: /metrics
    # is off), seconds its database gauges are cached, the readiness probe's per-check
    # timeout and how long its answer is reused.
    "METRICS_TOKEN": "",
    "METRICS_CACHE_SECONDS": 10.0,
    "READYZ_TIMEOUT": 1.0,
    "READYZ_CACHE_SECONDS": 1.0,
}


class AppSettings:
    """``app_settings.NAME``: the project's setting when it has one, else the app's default."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"notification has no setting {name!r}")
        return getattr(settings, name, DEFAULTS[name])

    def __dir__(self) -> list[str]:
        return sorted(DEFAULTS)


app_settings = AppSettings()
