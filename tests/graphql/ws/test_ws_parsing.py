"""Websocket operations are parsed and validated off the event loop (issue 10, defect 3).

One event loop serves every socket, HTTP request and status callback of a
uvicorn process; a large document parsed on it stalls all of them. The
document here is the costliest shape under the default size cap
(``GRAPHQL_WS_MAX_MESSAGE_BYTES``): the same field 5,000 times, about half a
second to parse and validate before graphql-core gives up comparing the
overlapping fields ("Validation aborted"). A ticker on the loop measures the
longest stall while the operation runs.
"""

import asyncio
import gc
import time
from collections.abc import Iterator

import pytest

from config.collector import tune_for_server
from notification.graphql.ws.authority import websocket_schema
from schema.schema import schema
from tests.support.settings_helpers import sms_settings

QUERY = "{ " + "__typename " * 5_000 + "}"


async def _longest_stall(run_operation) -> tuple[float, float, object]:
    """(longest gap between loop turns, total time, result) while ``run_operation`` runs."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    start = time.perf_counter()
    result = await run_operation()
    total = time.perf_counter() - start
    done.set()
    await task
    return max(gaps), total, result


def test_the_document_size_cap_admits_this_document():
    assert len(QUERY.encode()) < 65_536


# The token and field limits (GRAPHQL_MAX_TOKENS, _FIELDS) would stop this document: off here,
# so the test measures the worst a host with the cost limits turned off could see.
@pytest.fixture
def server_collector() -> Iterator[None]:
    """The server's garbage-collection policy (``config/asgi.py``) for this test.

    Under the test process's default thresholds a full collection triggered by the
    parsing thread's allocations holds the GIL for about 100 ms, a pause the
    server, which freezes its start-up objects and collects far less often, does
    not have.
    """
    thresholds = gc.get_threshold()
    tune_for_server()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.serial  # compares stalls in wall-clock time: never beside another test worker
@pytest.mark.usefixtures("server_collector")
@sms_settings(GRAPHQL_MAX_TOKENS=0, GRAPHQL_MAX_FIELDS=0)
def test_a_large_document_does_not_stall_the_loop():
    threaded = websocket_schema(schema)
    stall, total, result = asyncio.run(_longest_stall(lambda: threaded.execute(QUERY)))
    assert [error.message for error in result.errors] == ["Validation aborted."]
    # The loop kept turning: its longest stall is a small part of the work.
    assert stall < total / 3, (stall, total)


@sms_settings(GRAPHQL_MAX_TOKENS=0, GRAPHQL_MAX_FIELDS=0)
def test_the_same_document_parsed_on_the_loop_stalls_it():
    """The control: without the extension the whole parse is one stall."""
    stall, total, result = asyncio.run(_longest_stall(lambda: schema.execute(QUERY)))
    assert [error.message for error in result.errors] == ["Validation aborted."]
    assert stall > total / 2, (stall, total)


def test_syntax_and_validation_errors_are_reported_as_usual():
    threaded = websocket_schema(schema)
    broken = asyncio.run(threaded.execute("{ __typename "))
    assert broken.errors and "Syntax Error" in broken.errors[0].message
    invalid = asyncio.run(threaded.execute("{ noSuchField }"))
    assert invalid.errors and "noSuchField" in invalid.errors[0].message


def test_the_http_schema_keeps_executing_synchronously():
    """The extension's hooks are async: only the websocket copy carries them."""
    assert schema.execute_sync("{ __typename }").data == {"__typename": "Query"}
    assert len(websocket_schema(schema).extensions) == len(schema.extensions) + 1
