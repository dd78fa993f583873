"""The emulator's memory: messages, the create-request log, sender queues, faults, outcomes.

Everything is guarded by one lock because HTTP handler threads, the scheduler
thread and control endpoints all touch it. No threads live here: the server
decides *when* things happen, this module only records *what* happened.

Sender queues are modelled as virtual time, not as a draining thread: each sender
has the moment its queue will be empty (``free_at``). A message of ``n`` segments
leaves at ``max(now, free_at) + n / rate`` and the queue depth at any instant is
``(free_at - now) * rate`` segments, which is exact and costs nothing per tick.
"""

import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from twilio_emulator import errors, pricing
from twilio_emulator.validation import CreateRequest

DEFAULT_MESSAGING_SERVICE_FROM = "+15005550006"
FINAL_STATUSES = ("delivered", "undelivered", "failed", "sent")


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class EmulatorConfig:
    """Knobs that tests and ``POST /_emulator/config`` can turn at run time."""

    latency_ms: int = 0
    drain_rate: float = 1.0
    queue_limit: int = 36_000
    callback_delay_ms: int = 1000
    callbacks_enabled: bool = True
    #: Status changes still happen, but their callbacks wait (in order) until unpaused.
    callbacks_paused: bool = False

    def updated(self, values: dict[str, Any]) -> "EmulatorConfig":
        """A copy with ``values`` applied; ``ValueError`` names the bad key."""
        known = {f.name: f.type for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in known:
                raise ValueError(f"unknown config key {key!r}; known: {sorted(known)}")
            if key in ("callbacks_enabled", "callbacks_paused"):
                if not isinstance(raw, bool):
                    raise ValueError(f"{key} must be a boolean")
                changes[key] = raw
                continue
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ValueError(f"{key} must be a number")
            if key == "drain_rate":
                if raw <= 0:
                    raise ValueError("drain_rate must be positive")
                changes[key] = float(raw)
            else:
                if raw < 0 or (key == "queue_limit" and raw < 1):
                    raise ValueError(f"{key} is out of range")
                changes[key] = int(raw)
        return replace(self, **changes)


@dataclass(frozen=True)
class Outcome:
    """How a message to a given number ends (set with ``POST /_emulator/outcomes``)."""

    status: str = "delivered"
    error_code: int | None = None
    error_message: str | None = None


@dataclass
class Fault:
    """An injected failure for the next ``remaining`` create requests (optionally to one number)."""

    kind: str
    remaining: int = 1
    to: str | None = None
    hold_ms: int | None = None
    #: For ``http_400``: the Twilio error code answered (e.g. 30004, message blocked).
    error_code: int | None = None

    KINDS = ("http_429", "http_500", "http_400", "timeout", "drop", "reset")


@dataclass(frozen=True)
class DeliveryStep:
    """A future status change of one message, with the moment (monotonic) it happens."""

    at: float
    status: str
    error_code: int | None = None
    error_message: str | None = None


@dataclass
class Message:
    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    media_urls: list[str]
    segments: int
    encoding: str
    status: str
    status_callback: str | None
    validity_period: int
    date_created: datetime
    date_updated: datetime
    date_sent: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None
    price: str | None = None
    history: list[str] = field(default_factory=list)
    #: Unix times (sub-second): accepted into the sender's queue, and leaving it
    #: (``None`` for a message that never enters it). Timing tests and
    #: ``bench/pacing.py`` measure queue waits with them.
    queued_at: float | None = None
    leaves_queue_at: float | None = None

    def summary(self) -> dict[str, Any]:
        """The record ``GET /_emulator/messages`` shows."""
        return {
            "sid": self.sid,
            "to": self.to,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "body": self.body,
            "status": self.status,
            "status_history": list(self.history),
            "error_code": self.error_code,
            "segments": self.segments,
            "encoding": self.encoding,
            "num_media": len(self.media_urls),
            "status_callback": self.status_callback,
            "validity_period": self.validity_period,
            "created": self.date_created.isoformat(),
            "date_sent": self.date_sent.isoformat() if self.date_sent else None,
            "queued_at": self.queued_at,
            "leaves_queue_at": self.leaves_queue_at,
        }


class EmulatorState:
    def __init__(self, account_sid: str, auth_token: str, config: EmulatorConfig) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.initial_config = config
        self._lock = threading.Lock()
        self._request_ids = itertools.count(1)
        self._clear(config)

    def _clear(self, config: EmulatorConfig) -> None:
        self.config = config
        self.messages: dict[str, Message] = {}
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.outcomes: dict[str, Outcome] = {}
        self.sender_free_at: dict[str, float] = {}
        self.prices: dict[str, tuple[str, dict[str, str]]] = dict(pricing.DEFAULT_PRICES)
        #: ISO codes asked of the Pricing API, in order.
        self.price_requests: list[str] = []
        self.generation = getattr(self, "generation", 0) + 1

    # --- control ---------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything and restore the start-up config; pending steps become stale."""
        with self._lock:
            self._clear(self.initial_config)

    def configure(self, values: dict[str, Any]) -> EmulatorConfig:
        with self._lock:
            self.config = self.config.updated(values)
            return self.config

    def add_faults(self, faults: list[Fault]) -> None:
        with self._lock:
            self.faults.extend(faults)

    def take_fault(self, to: str | None) -> Fault | None:
        """Consume one use of the first fault that matches this recipient."""
        with self._lock:
            for fault in self.faults:
                if fault.to is None or fault.to == to:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    return replace(fault)
        return None

    def set_prices(self, table: dict[str, dict[str, str]]) -> None:
        """Replace the Pricing API's table: ``{iso: {number_type: price}}``."""
        with self._lock:
            self.prices = {iso.upper(): (iso.upper(), dict(types)) for iso, types in table.items()}

    def country_prices(self, iso: str) -> tuple[str, dict[str, str]] | None:
        with self._lock:
            self.price_requests.append(iso.upper())
            return self.prices.get(iso.upper())

    def price_of(self, message: "Message") -> str:
        """The (negative) price Twilio reports for a message: the dearer carrier's."""
        try:
            country = phonenumbers.region_code_for_number(phonenumbers.parse(message.to, None))
        except phonenumbers.NumberParseException:
            country = ""
        entry = self.prices.get(country or "")
        if entry is None:
            return f"-{0.0079 * message.segments:.5f}"
        sender = message.from_ or ""
        number_type = "shortcode" if sender and not sender.startswith("+") else "local"
        if number_type not in entry[1] and "mobile" in entry[1]:
            number_type = "mobile"
        return f"-{pricing.highest_price(entry[1], number_type) * message.segments:.5f}"

    def set_outcomes(self, outcomes: dict[str, Outcome]) -> None:
        with self._lock:
            self.outcomes.update(outcomes)

    # --- messages --------------------------------------------------------------
    def create_message(self, request: CreateRequest) -> tuple[Message, list[DeliveryStep], int]:
        """Queue a validated message behind its sender, or raise 21611 when the queue is full.

        Returns the message, its future status changes and the generation they belong to.
        """
        with self._lock:
            config = self.config
            now = time.monotonic()
            delay = config.callback_delay_ms / 1000
            free_at = max(now, self.sender_free_at.get(request.sender, now))
            queued_segments = (free_at - now) * config.drain_rate
            overflow = queued_segments + request.segments > config.queue_limit
            if overflow and not request.messaging_service_sid:
                raise errors.sender_queue_full()

            created = utcnow()
            message = Message(
                sid=new_sid("SM"),
                account_sid=self.account_sid,
                to=request.to,
                from_=request.from_,
                messaging_service_sid=request.messaging_service_sid,
                body=request.body,
                media_urls=list(request.media_urls),
                segments=request.segments,
                encoding=request.encoding,
                status="accepted" if request.messaging_service_sid else "queued",
                status_callback=request.status_callback,
                validity_period=request.validity_period,
                date_created=created,
                date_updated=created,
                queued_at=time.time(),
            )
            message.history.append(message.status)
            self.messages[message.sid] = message

            if overflow:
                # With a Messaging Service Twilio accepts, then fails the message later.
                steps = [
                    DeliveryStep(
                        now + delay,
                        "failed",
                        errors.QUEUE_OVERFLOW,
                        errors.CALLBACK_ERROR_MESSAGES[errors.QUEUE_OVERFLOW],
                    )
                ]
                return replace(message), steps, self.generation

            leaves_at = free_at + request.segments / config.drain_rate
            self.sender_free_at[request.sender] = leaves_at
            message.leaves_queue_at = message.queued_at + (leaves_at - now)
            # The first callback never comes sooner than the configured delay, so a
            # client has a realistic moment to store the sid before hearing about it.
            sent_at = max(leaves_at, now + delay)
            outcome = self.outcomes.get(request.to, Outcome())
            if outcome.status == "failed":
                steps = [DeliveryStep(sent_at, "failed", outcome.error_code, outcome.error_message)]
            elif outcome.status == "sent":
                steps = [DeliveryStep(sent_at, "sent")]
            else:
                steps = [
                    DeliveryStep(sent_at, "sent"),
                    DeliveryStep(
                        sent_at + delay, outcome.status, outcome.error_code, outcome.error_message
                    ),
                ]
            return replace(message), steps, self.generation

    def apply_step(self, sid: str, step: DeliveryStep, generation: int) -> Message | None:
        """Move a message to the step's status; ``None`` if it was reset meanwhile."""
        with self._lock:
            message = self.messages.get(sid)
            if message is None or generation != self.generation:
                return None
            now = utcnow()
            message.status = step.status
            message.history.append(step.status)
            message.date_updated = now
            if step.error_code is not None:
                message.error_code = step.error_code
                message.error_message = step.error_message or errors.CALLBACK_ERROR_MESSAGES.get(
                    step.error_code, "Message delivery failed"
                )
            if step.status in ("sent", "delivered", "undelivered") and message.date_sent is None:
                message.date_sent = now
            if message.from_ is None:
                message.from_ = DEFAULT_MESSAGING_SERVICE_FROM
            if step.status != "failed" and message.price is None:
                message.price = self.price_of(message)
            return replace(message)

    def get_message(self, sid: str) -> Message | None:
        with self._lock:
            message = self.messages.get(sid)
            return replace(message) if message else None

    def list_messages(
        self,
        to: str | None = None,
        from_: str | None = None,
        date_sent: Callable[[datetime | None], bool] | None = None,
    ) -> list[Message]:
        """Newest first, as Twilio lists them; ``date_sent`` filters on the sent date."""
        with self._lock:
            found = [
                replace(m)
                for m in reversed(self.messages.values())
                if (to is None or m.to == to)
                and (from_ is None or m.from_ == from_)
                and (date_sent is None or date_sent(m.date_sent))
            ]
        return found

    # --- request log -----------------------------------------------------------
    def log_request(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            entry = {
                "id": next(self._request_ids),
                "received_at": utcnow().isoformat(),
                "received_ts": time.time(),  # sub-second, for timing tests and benchmarks
                **entry,
            }
            self.requests.append(entry)
            return entry

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self.requests]

    def snapshot_config(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self.config)

    def queue_depths(self) -> dict[str, float]:
        """Segments still waiting per sender, for ``GET /_emulator/queues``."""
        with self._lock:
            now = time.monotonic()
            rate = self.config.drain_rate
            return {
                sender: round(max(0.0, free_at - now) * rate, 3)
                for sender, free_at in self.sender_free_at.items()
            }
