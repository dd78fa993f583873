"""The API in a real browser: GraphiQL and the demo frontend in headless Chromium.

The whole stack runs as processes (uvicorn with static files, the Twilio
emulator, an RQ worker for the send); the browser may reach only the API's
origin and, for the demo, the demo's own origin: anything else (a CDN) is
aborted and fails the test. Rows are made before the browser starts
(``tests.support.browser_support`` says why).
"""

import json
import threading
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from playwright.sync_api import Page

from devstack.demo_server import demo_server
from tests.support.browser_support import open_browser, require_chromium, save_readme_screenshot
from tests.support.live_support import bound_socket, run_worker

PASSWORD = "correct horse battery staple"
QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
RESPONSE_EDITOR = ".graphiql-response .CodeMirror"
EXECUTE_BUTTON = "button.graphiql-execute-button"
# Seconds: generous because other test runs share the machine's two cores.
LIVE_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def _chromium_installed() -> None:
    require_chromium()


def make_creator():
    """A user who may create notifications but not read everyone's: "yours" must cover
    what they created, or they could not watch it."""
    user = get_user_model().objects.create_user("creator", password=PASSWORD)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="notification", codename="add_notification")
    )
    return user


@pytest.fixture
def browser_stack(live_stack):
    """``start(**env)`` -> (base_url, worker_env): the live stack with a fast emulator,
    serving static files (DEBUG, as in ``make run``)."""

    def start(**server_env: str) -> tuple[str, dict[str, str]]:
        base_url, worker_env, _emulator = live_stack("10000", "20", DJANGO_DEBUG="1", **server_env)
        return base_url, worker_env

    return start


# --- GraphiQL -------------------------------------------------------------------------


class GraphiQL:
    """Drives the GraphiQL page through its editors, as a person would type and run."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.steps = 0

    def _set(self, selector: str, value: str) -> None:
        self.page.evaluate(
            "([selector, value]) => document.querySelector(selector).CodeMirror.setValue(value)",
            [selector, value],
        )

    def _response_text(self) -> str:
        return self.page.evaluate(
            "(selector) => document.querySelector(selector).CodeMirror.getValue()",
            RESPONSE_EDITOR,
        )

    def start(self, operation: str, field: str, *, aliased: bool = True) -> str:
        """Type ``operation`` (``field`` aliased to a fresh name) and run it; returns
        the name the response will use.

        The alias makes each response differ from the one before, so the response
        pane always changes and is never an earlier answer.
        """
        self.steps += 1
        alias = f"step{self.steps}" if aliased else field
        query = operation.replace(field, f"{alias}: {field}", 1) if aliased else operation
        self._set(QUERY_EDITOR, query)
        # GraphiQL parses an edit after a short debounce, then calls onEditQuery (the
        # page puts the query in the URL): only then does it know this is, say, a
        # subscription. A person typing never outruns it; a test would.
        self.page.wait_for_function(
            "(query) => new URLSearchParams(location.search).get('q') === query", arg=query
        )
        self.page.click(EXECUTE_BUTTON)
        return alias

    def wait_for(self, alias: str, text: str = "") -> dict:
        """The response pane once it answers ``alias`` (and contains ``text``), parsed."""
        self.page.wait_for_function(
            """([selector, alias, text]) => {
                const value = document.querySelector(selector).CodeMirror.getValue();
                return value.includes('"' + alias + '"') && value.includes(text);
            }""",
            arg=[RESPONSE_EDITOR, alias, text],
            timeout=LIVE_TIMEOUT_MS,
        )
        return json.loads(self._response_text())

    def run(self, operation: str, field: str) -> dict:
        alias = self.start(operation, field)
        result = self.wait_for(alias)
        assert not result.get("errors"), result
        return result["data"][alias]


def login(graphiql: GraphiQL) -> None:
    user = graphiql.run(
        f'mutation {{ login(username: "creator", password: "{PASSWORD}") {{ username }} }}',
        "login",
    )
    assert user == {"username": "creator"}


def create(graphiql: GraphiQL, title: str) -> str:
    payload = graphiql.run(
        "mutation { createSmsNotification(input: {"
        f'title: "{title}", body: "Your parcel arrives today", '
        'toPhoneNumber: "+1 415 555 0100"}) '
        "{ notification { id status } errors { field message code } } }",
        "createSmsNotification",
    )
    assert payload["errors"] == [], payload
    return payload["notification"]["id"]


def test_graphiql_keeps_working_across_login_and_logout_and_shows_a_live_subscription(
    browser_stack,
):
    make_creator()
    base_url, worker_env = browser_stack()

    with open_browser([base_url], "graphiql") as browser:
        page = browser.page
        page.goto(base_url + "/graphql/")
        page.wait_for_selector(QUERY_EDITOR)
        graphiql = GraphiQL(page)

        # One page load throughout: login rotates the CSRF token, and the next
        # POST must carry the new one (a stale token is a 403 HTML page).
        login(graphiql)
        first = create(graphiql, "Parcel 1")
        assert graphiql.run("mutation { logout }", "logout") is True
        login(graphiql)
        second = create(graphiql, "Parcel 2")
        assert int(second) > int(first)

        # Over graphql-transport-ws: the current status first, then every change.
        # Not aliased (as a person would type it, for the README's screenshot): its
        # first answer, "NOT_SUBMITTED", is unlike anything the pane showed before.
        alias = graphiql.start(
            "subscription {\n"
            f'  smsStatus(notificationIds: ["{second}"]) {{\n'
            "    notificationId status deliveryStatus at\n"
            "  }\n"
            "}",
            "smsStatus",
            aliased=False,
        )
        initial = graphiql.wait_for(alias, "NOT_SUBMITTED")["data"][alias]
        assert initial["status"] == "PENDING"
        run_worker(worker_env, sent=2)
        delivered = graphiql.wait_for(alias, '"DELIVERED"')["data"][alias]
        assert delivered["status"] == "DELIVERED"
        assert delivered["at"].endswith("+00:00"), delivered
        save_readme_screenshot(page, "graphiql-subscription.png")
        browser.assert_clean()


# --- the demo frontend on another origin ------------------------------------------------


@pytest.fixture
def demo_url() -> Iterator[str]:
    """The demo frontend (``devstack.demo_server``) on its own free port: another origin."""
    sock = bound_socket()
    server = demo_server(sock)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_demo_frontend_on_another_origin_logs_in_counts_creates_and_sees_delivery(
    browser_stack, demo_url
):
    make_creator()
    # The one setting a frontend on another origin needs: CORS, CSRF and websockets.
    base_url, worker_env = browser_stack(DJANGO_CORS_ALLOWED_ORIGINS=demo_url)

    with open_browser([base_url, demo_url], "demo") as browser:
        page = browser.page
        page.goto(f"{demo_url}/?api={base_url}")
        page.fill("#username", "creator")
        page.fill("#password", PASSWORD)
        page.click("#login")
        page.wait_for_selector("#app", state="visible")
        assert page.text_content("#who") == "Logged in as creator"
        assert page.locator("#login-form").is_hidden()

        # The counter asks smsSegments as the body changes; an emoji needs UCS-2.
        page.fill("#title", "Parcel")
        page.fill("#to", "+1 415 555 0100")
        page.locator("#body").press_sequentially("Your parcel")
        page.wait_for_function(
            "() => document.getElementById('counter').textContent === 'GSM-7 · 1 segment · 11/160'"
        )
        page.locator("#body").press_sequentially(" 📦")
        page.wait_for_function(
            "() => document.getElementById('counter').textContent === 'UCS-2 · 1 segment · 14/70'"
        )

        page.click("#create")
        row = page.locator("#notifications tr[data-live='true']")
        row.wait_for()  # created, and watched: the server sent its current status
        assert row.get_attribute("data-delivery") == "NOT_SUBMITTED"

        run_worker(worker_env)
        page.wait_for_selector(
            "#notifications tr[data-delivery='DELIVERED']", timeout=LIVE_TIMEOUT_MS
        )
        assert row.locator(".status").text_content() == "DELIVERED"
        assert page.locator("#notifications tr").count() == 1
        assert page.text_content("#error") == ""
        save_readme_screenshot(page, "demo-frontend.png")
        browser.assert_clean()
