"""Django system checks: a host project wired wrong hears it at ``manage.py check``.

Without them a missing ``sms`` queue, a lockout backend that is not first or a
mistyped quiet-hours window surface only at run time: in a worker's traceback,
as logins that are never locked out, or as a marketing message held or sent at
the wrong hour. Each check has an id (``notification.E00x`` errors stop
``runserver`` and ``migrate``; ``notification.W00x`` warnings do not) and a hint.

The rules themselves live where they are used: the quiet-hours, price-table and
schedule parsers are called here exactly as the app calls them, so a check can
never accept what the app later refuses.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from notification.backends.base import BaseSmsBackend
from notification.conf import (
    DEFAULTS,
    NAMESPACE,
    RANGES,
    app_settings,
    deprecated_names_in_use,
    out_of_range,
    unknown_keys,
)
from notification.guardrails import costs as pricing
from notification.guardrails import places as countries
from notification.guardrails import places as quiet_hours
from notification.jobs.schedule import declared_schedule
from notification.throttle.login import LOCKOUT_BACKEND_PATH

LOCKOUT_BACKEND = LOCKOUT_BACKEND_PATH


@register(Tags.compatibility)
def check_sms_queue(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E001: the send job is enqueued on ``SMS_QUEUE_NAME``; django-rq refuses an unknown queue."""
    name = app_settings.SMS_QUEUE_NAME
    if name in getattr(settings, "RQ_QUEUES", {}):
        return []
    return [
        Error(
            f"The SMS queue {name!r} (SMS_QUEUE_NAME) is not in RQ_QUEUES.",
            hint=f'Add it: RQ_QUEUES = {{"{name}": {{"URL": "redis://localhost:6379/0"}}}}.',
            id="notification.E001",
        )
    ]


@register(Tags.security)
def check_lockout_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E002/W001: the lockout backend refuses a locked-out login only when asked first.

    Behind ``ModelBackend`` a correct password is accepted before the lockout is
    consulted, so guessing continues unhindered; absent, logins are never locked out.
    """
    backends = list(getattr(settings, "AUTHENTICATION_BACKENDS", []))
    if backends[:1] == [LOCKOUT_BACKEND]:
        return []
    if LOCKOUT_BACKEND in backends:
        return [
            Error(
                f"{LOCKOUT_BACKEND} is in AUTHENTICATION_BACKENDS but not first.",
                hint="Move it to the front: the backends before it accept a password "
                "without asking whether the account is locked out.",
                id="notification.E002",
            )
        ]
    return [
        Warning(
            f"{LOCKOUT_BACKEND} is not in AUTHENTICATION_BACKENDS: failed logins "
            "(LOGIN_MAX_FAILURES) never lock an account or address out.",
            hint=f'Put "{LOCKOUT_BACKEND}" first in AUTHENTICATION_BACKENDS.',
            id="notification.W001",
        )
    ]


@register(Tags.compatibility)
def check_channel_layers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W002: without a channel layer every subscription waits for changes never published."""
    if getattr(settings, "CHANNEL_LAYERS", None):
        return []
    return [
        Warning(
            "CHANNEL_LAYERS is not set: GraphQL subscriptions get no live status.",
            hint="Set CHANNEL_LAYERS to a channels_redis.core.RedisChannelLayer "
            "(README 'Use it in your own Django project').",
            id="notification.W002",
        )
    ]


@register(Tags.security, deploy=True)
def check_public_base_url(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W003 (``--deploy``): Twilio signs callbacks to this URL; over http they travel readable.

    https://www.twilio.com/docs/usage/security#validating-requests: the signature
    covers the URL, so plain http exposes the status callbacks' contents and makes
    the signed URL (and so every check of it) replayable by anyone on the path.
    """
    url = str(app_settings.PUBLIC_BASE_URL)
    if settings.DEBUG or url.startswith("https://"):
        return []
    return [
        Warning(
            f"PUBLIC_BASE_URL is {url!r} with DEBUG off: Twilio's callbacks are not encrypted.",
            hint=f"Set {NAMESPACE}['PUBLIC_BASE_URL'] to the public https:// address Twilio calls.",
            id="notification.W003",
        )
    ]


@register(Tags.compatibility)
def check_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E003: an unimportable ``SMS_BACKEND`` fails every send, in the worker, silently to users."""
    path = app_settings.SMS_BACKEND
    try:
        backend = import_string(path)
    except ImportError as exc:
        problem = f"cannot be imported ({exc})"
    else:
        if isinstance(backend, type) and issubclass(backend, BaseSmsBackend):
            return []
        problem = "is not a subclass of notification.backends.base.BaseSmsBackend"
    return [
        Error(
            f"SMS_BACKEND {path!r} {problem}.",
            hint="Use notification.backends.twilio.TwilioBackend, "
            "notification.backends.locmem.LocmemBackend, "
            "notification.backends.console.ConsoleBackend or your own BaseSmsBackend.",
            id="notification.E003",
        )
    ]


@register(Tags.compatibility)
def check_numbers_in_range(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E004: intervals, sizes and rates are numbers in their range (``conf.RANGES``)."""
    errors: list[CheckMessage] = []
    for name in RANGES:
        value = getattr(app_settings, name)
        words = out_of_range(name, value)
        if words is None:
            continue
        errors.append(
            Error(
                f"{NAMESPACE}[{name!r}] is {value!r}; it must be {words}.",
                hint=f"Set {name} (the key, or the environment variable of that name) to "
                f"{words}, or remove it for the default ({DEFAULTS[name]!r}).",
                id="notification.E004",
            )
        )
    return errors


@register(Tags.compatibility)
def check_namespace_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E008: ``SMS_NOTIFICATIONS`` is a dict of known keys.

    A misspelt key is otherwise ignored without a word and its default used (a
    ``TWILIO_SMS_RAET`` sends at the default pace); a dict of another shape would
    leave every setting at its default.
    """
    value = getattr(settings, NAMESPACE, {})
    if not isinstance(value, Mapping):
        return [
            Error(
                f"{NAMESPACE} is a {type(value).__name__}, not a dict.",
                hint=f'Write it as {NAMESPACE} = {{"TWILIO_SMS_RATE": 1.0, ...}}.',
                id="notification.E008",
            )
        ]
    return [
        Error(
            f"{NAMESPACE} has an unknown key {key!r}.",
            hint=f"Did you mean {closest!r}?"
            if closest
            else f"The keys are listed in the README's Configuration section ({NAMESPACE}).",
            id="notification.E008",
        )
        for key, closest in unknown_keys().items()
    ]


@register(Tags.compatibility)
def check_deprecated_names(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W004: settings of the app still set at the top level (deprecated for one release)."""
    names = deprecated_names_in_use()
    if not names:
        return []
    return [
        Warning(
            f"Deprecated top-level settings of the app: {', '.join(names)}.",
            hint=f"Move them into {NAMESPACE} under the same names "
            f'({NAMESPACE} = {{"{names[0]}": ...}}); the top-level names stop working '
            "in the next release.",
            id="notification.W004",
        )
    ]


def _parse_errors(
    checks: Iterable[tuple[str, Callable[[], object]]], id: str, hint: str
) -> list[CheckMessage]:
    """An error for each setting whose parser (the app's own) raises."""
    errors: list[CheckMessage] = []
    for name, parse in checks:
        try:
            parse()
        except (ValueError, TypeError, ImportError, AttributeError) as exc:
            errors.append(Error(f"{name}: {exc}", hint=hint, id=id))
    return errors


@register(Tags.compatibility)
def check_quiet_hours(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E005: a window the quiet-hours guard cannot parse fails every MARKETING create."""
    return _parse_errors(
        (
            ("SMS_QUIET_HOURS", quiet_hours.default_window),
            ("SMS_QUIET_HOURS_BY_REGION", quiet_hours.region_windows),
        ),
        "notification.E005",
        'Write windows as HH:MM-HH:MM ("21:00-08:00"), per region as '
        '"US-FL=08:00-20:00,US-NJ=08:00-20:00"; "" turns quiet hours off.',
    )


@register(Tags.compatibility)
def check_countries(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E006: a code libphonenumber has no numbers for never matches, refusing everything else.

    The allow-list compares against libphonenumber's region of each number
    (``countries.country_of``), so its own region codes are the valid ones.
    """
    errors: list[CheckMessage] = []
    region = str(app_settings.DEFAULT_PHONE_REGION).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        errors.append(
            Error(
                f"DEFAULT_PHONE_REGION {app_settings.DEFAULT_PHONE_REGION!r} is not a region "
                "with phone numbers.",
                hint='Use an ISO 3166 alpha-2 code such as "US", "GB" or "FR".',
                id="notification.E006",
            )
        )
    unknown = sorted((countries.allowed_countries() or set()) - phonenumbers.SUPPORTED_REGIONS)
    if unknown:
        errors.append(
            Error(
                f"SMS_ALLOWED_COUNTRIES has codes no number belongs to: {', '.join(unknown)}.",
                hint='Use ISO 3166 alpha-2 codes separated by commas ("US,CA"), or "*" for all.',
                id="notification.E006",
            )
        )
    return errors


@register(Tags.compatibility)
def check_price_table_and_schedule(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E007: the price table and the declared schedule parse as the app will parse them."""
    return _parse_errors(
        (
            ("SMS_PRICE_TABLE", pricing.price_table),
            ("SMS_SCHEDULE", declared_schedule),
        ),
        "notification.E007",
        'SMS_PRICE_TABLE is "US=0.0083,*=0.05" or a dict; SMS_SCHEDULE is the dotted path '
        "of a list of notification.jobs.schedule.Periodic entries with distinct ids.",
    )
