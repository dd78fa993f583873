"""The SMS backend interface: send one message, get an outcome.

Modelled on Django's email backends (``django.core.mail.backends``) and
django-anymail's ``AnymailBaseBackend``: the app chooses a backend by the dotted
path in ``SMS_BACKEND`` and knows nothing else about the provider. Claims, the
dispatch log, recovery and the queue estimate stay in ``notification.send``
and work the same whichever backend sends.

A backend instance is used by one thread at a time (the send job gives each of
its threads its own instance), so it may keep an SDK client or a connection.

``send_async`` is the same, awaited (like ``asend`` beside ``send`` in Django's async
APIs). A backend that overrides it is driven by the send job on one event loop,
``TWILIO_SMS_CONCURRENCY`` coroutines at a time, which costs a fraction of the CPU
of as many threads (``TwilioBackend``: the SDK's aiohttp client). A backend that
does not (locmem, console, third-party ones) keeps the thread path: the send job
calls its ``send`` from its sending threads, one instance per thread, as before.

``send`` returns an ``Accepted`` or a classified ``SendFailure`` and should not
raise: the three failure kinds are what keeps a message from being sent twice
(``AMBIGUOUS``) or lost (``RETRYABLE``). Anything it does raise is treated as
ambiguous, because the message may have left.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from notification.delivery import OPT_OUT_CODE
from notification.exceptions import SmsNotificationError


class FailureKind(StrEnum):
    PERMANENT = "permanent"
    RETRYABLE = "retryable"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True, slots=True)
class SendFailure:
    """A classified failure, ready to be written to the SMS row."""

    kind: FailureKind
    code: int | None
    message: str

    @property
    def is_opt_out(self) -> bool:
        return self.code == OPT_OUT_CODE


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One message to send, with everything a provider needs to report on it."""

    to: str
    body: str
    # Our own count (GSM-7 or UCS-2, ``notification.values``); a provider may know better.
    segments: int
    # Where the provider should post status callbacks (empty: none).
    status_callback: str
    # Seconds the provider may keep the message queued before giving up.
    validity_period: int


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider took the message: its id there, its first status and its segments."""

    sid: str
    status: str
    segments: int


@dataclass(frozen=True, slots=True)
class ProviderMessage:
    """A message as the provider knows it now (its fetch or list answer).

    Reconciliation (``notification.reconciliation``) reads these to resolve
    messages whose fate we do not know: Twilio's own record is the evidence.
    """

    sid: str
    status: str
    to: str
    #: The number it went from (Twilio picks one from a Messaging Service's pool).
    from_number: str
    #: The Messaging Service it was sent through, if any.
    messaging_service_sid: str
    body: str
    date_created: datetime | None
    date_sent: datetime | None
    error_code: int | None = None
    error_message: str = ""


class LookupUnavailable(SmsNotificationError):
    """The provider could not answer a fetch or list now (unreachable, 5xx, throttled).

    Nothing may be concluded from it: reconciliation leaves the row for its next pass.
    """


@dataclass(frozen=True, slots=True)
class SegmentPrice:
    """What one outbound segment to a country costs (positive), in ``unit`` (ISO 4217)."""

    amount: Decimal
    unit: str


class BaseSmsBackend:
    """Subclass and implement ``send``; ``missing_settings`` when the backend needs some.

    A backend that can also look messages up at the provider sets
    ``supports_lookup`` and implements ``fetch`` and ``find``; reconciliation
    skips backends without them (it cannot prove anything without the provider).
    """

    #: True when ``fetch`` and ``find`` are implemented.
    supports_lookup = False

    def missing_settings(self) -> list[str]:
        """Names of settings this backend needs but does not have (empty when ready)."""
        return []

    def send(self, message: OutgoingSms) -> Accepted | SendFailure:
        raise NotImplementedError

    async def send_async(self, message: OutgoingSms) -> Accepted | SendFailure:
        """``send``, awaitable; by default ``send`` in a thread (same contract: classify,
        do not raise). Override it with a native coroutine to be sent on the event loop."""
        return await asyncio.to_thread(self.send, message)

    @classmethod
    def sends_natively_async(cls) -> bool:
        """True when the class overrides ``send_async`` (the send job then awaits it on
        its event loop instead of calling ``send`` from a thread)."""
        return cls.send_async is not BaseSmsBackend.send_async

    def fetch(self, sid: str) -> ProviderMessage | None:
        """The provider's current record of ``sid``; ``None`` when it says there is none.

        Raises ``LookupUnavailable`` when the provider cannot answer now.
        """
        raise NotImplementedError

    def find(self, *, to: str, sender: str, sent_after: datetime) -> list[ProviderMessage]:
        """Every message the provider sent to ``to`` from ``sender`` since ``sent_after``.

        The listing must be complete (every page) or raise ``LookupUnavailable``:
        reconciliation concludes from an empty answer that a message was never
        accepted, and resends it.
        """
        raise NotImplementedError

    def segment_price(self, country: str) -> SegmentPrice | None:
        """The provider's price of one outbound segment to ``country`` (ISO 3166 alpha-2).

        ``None`` when the provider publishes none (the default): the spend limits
        then need ``SMS_PRICE_TABLE``. May raise on a network error; the caller
        (``notification.guardrails.costs``) caches and tolerates it.
        """
        return None

    def reported_price(self, provider_id: str) -> tuple[Decimal, str] | None:
        """What the provider billed for a sent message (positive, and its currency), or
        ``None`` while it has not said (the default: a provider with no such API)."""
        return None
