"""The server's garbage-collection policy, tuned for many long-lived websocket connections.

With CPython's default thresholds, young collections ran hundreds of times per
published event and full collections paused the loop: the largest part of the
p99 latency at 1,000 subscribers (README, "Profiling notes"). Objects loaded at
start-up (Django, the schema, the URLconf) live for ever, so they leave the
collector's view (``gc.freeze``), and young collections run after 50,000
allocations instead: nearly everything a request or an event allocates is freed
by reference counting long before, so the collector finds little to do but still
reclaims cycles within milliseconds. The tests that measure the event loop apply
the same policy, so they measure what the server does.
"""

import gc

#: ``gc.set_threshold``'s arguments for a server process.
SERVER_THRESHOLDS = (50_000, 20, 10)


def tune_for_server() -> None:
    """Freeze what is loaded now and apply :data:`SERVER_THRESHOLDS`."""
    gc.freeze()
    gc.set_threshold(*SERVER_THRESHOLDS)
