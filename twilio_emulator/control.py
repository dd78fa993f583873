"""The ``/_emulator/`` control API: inspect what the emulator saw, steer what it does.

No authentication (it only ever listens on loopback in tests and dev). Bodies are
JSON; a malformed body answers 400 with ``{"error": ...}`` naming the problem.
"""

import json
from typing import Any, Protocol

from twilio_emulator.callbacks import CallbackSender
from twilio_emulator.state import FINAL_STATUSES, EmulatorState, Fault, Outcome

ControlAnswer = tuple[int, Any]


class Emulator(Protocol):
    """What the control API steers: ``server.EmulatorServer`` is one.

    A protocol rather than an import of the server, which imports this module to
    route ``/_emulator/`` requests: the two importing each other was the
    emulator's one import cycle (import-linter's acyclic contract now holds it).
    """

    state: EmulatorState
    callbacks: CallbackSender

    def reset(self) -> None: ...

    def configure(self, values: dict[str, Any]) -> None: ...

    def release_held(self) -> None: ...

    def post_inbound(
        self, *, from_: str, to: str, body: str, url: str, messaging_service_sid: str | None
    ) -> tuple[int, dict[str, Any]]: ...


class ControlError(ValueError):
    pass


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ControlError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ControlError("body must be a JSON object")
    return data


def _parse_faults(data: dict[str, Any]) -> list[Fault]:
    raw_faults = data.get("faults")
    if not isinstance(raw_faults, list):
        raise ControlError('"faults" must be a list')
    faults = []
    for index, raw in enumerate(raw_faults):
        if not isinstance(raw, dict) or raw.get("kind") not in Fault.KINDS:
            raise ControlError(f"faults[{index}].kind must be one of {list(Fault.KINDS)}")
        count = raw.get("count", 1)
        hold_ms = raw.get("hold_ms")
        if not isinstance(count, int) or count < 1:
            raise ControlError(f"faults[{index}].count must be a positive integer")
        if hold_ms is not None and (not isinstance(hold_ms, int) or hold_ms < 0):
            raise ControlError(f"faults[{index}].hold_ms must be a non-negative integer")
        error_code = raw.get("error_code")
        if raw["kind"] == "http_400" and not isinstance(error_code, int):
            raise ControlError(f"faults[{index}].error_code must be an integer for http_400")
        faults.append(Fault(raw["kind"], count, raw.get("to"), hold_ms, error_code))
    return faults


def _parse_outcomes(data: dict[str, Any]) -> dict[str, Outcome]:
    outcomes = {}
    for number, raw in data.items():
        if not isinstance(raw, dict) or raw.get("status") not in FINAL_STATUSES:
            raise ControlError(f"{number}.status must be one of {list(FINAL_STATUSES)}")
        code = raw.get("error_code")
        if code is not None and not isinstance(code, int):
            raise ControlError(f"{number}.error_code must be an integer")
        outcomes[number] = Outcome(raw["status"], code, raw.get("error_message"))
    return outcomes


def handle(
    emulator: Emulator, method: str, path: str, query: dict[str, list[str]], body: bytes
) -> ControlAnswer:
    state = emulator.state
    route = (method, path.rstrip("/"))
    try:
        match route:
            case ("GET", "/_emulator/messages"):
                to = (query.get("to") or [None])[0]
                return 200, [m.summary() for m in reversed(state.list_messages(to=to))]
            case ("GET", "/_emulator/requests"):
                return 200, state.request_log()
            case ("GET", "/_emulator/callbacks"):
                return 200, emulator.callbacks.delivery_log()
            case ("GET", "/_emulator/queues"):
                return 200, state.queue_depths()
            case ("GET", "/_emulator/config"):
                return 200, state.snapshot_config()
            case ("POST", "/_emulator/reset"):
                emulator.reset()
                return 200, {"reset": True}
            case ("POST", "/_emulator/config"):
                try:
                    emulator.configure(_json_object(body))
                except ValueError as exc:
                    raise ControlError(str(exc)) from None
                return 200, state.snapshot_config()
            case ("POST", "/_emulator/faults"):
                faults = _parse_faults(_json_object(body))
                state.add_faults(faults)
                return 200, {"queued": len(faults)}
            case ("POST", "/_emulator/release"):
                emulator.release_held()
                return 200, {"released": True}
            case ("GET", "/_emulator/prices"):
                return 200, {"requests": list(state.price_requests)}
            case ("POST", "/_emulator/prices"):
                data = _json_object(body)
                if not all(isinstance(v, dict) for v in data.values()):
                    raise ControlError("prices: {ISO: {number_type: price}}")
                state.set_prices(data)
                return 200, {"countries": sorted(data)}
            case ("POST", "/_emulator/outcomes"):
                outcomes = _parse_outcomes(_json_object(body))
                state.set_outcomes(outcomes)
                return 200, {"numbers": sorted(outcomes)}
            case ("POST", "/_emulator/inbound"):
                data = _json_object(body)
                missing = [k for k in ("from", "to", "body", "url") if not data.get(k)]
                if missing and missing != ["body"]:
                    raise ControlError(f"missing fields: {missing}")
                return emulator.post_inbound(
                    from_=data["from"],
                    to=data["to"],
                    body=data.get("body", ""),
                    url=data["url"],
                    messaging_service_sid=data.get("messaging_service_sid"),
                )
    except ControlError as exc:
        return 400, {"error": str(exc)}
    return 404, {"error": f"no control endpoint {method} {path}"}
