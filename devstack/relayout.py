"""Issue 20's reorganisation as a re-runnable script: fewer, deeper modules; tests in folders.

Run from the root of a clean checkout (``.venv/bin/python -m devstack.relayout``).
Everything the new layout needs is here, driven by the tables at the top:

* ``MODULES``: every module of ``notification/`` (migrations aside), old dotted name
  -> new dotted name. Several old names on one new name are merged into it (in
  dependency order, one docstring keeping each old one, imports hoisted); a name
  mapped to itself stays where it is; an old name alone on a new one is a ``git mv``
  (the file keeps its history).
* ``TESTS``: every module of ``tests/`` the same way (test files into folders that
  mirror the app, helpers into ``tests/support/``).
* ``LAYERS``: the import-linter layers contract for the new packages (written into
  ``pyproject.toml``).
* ``NEW_PACKAGES``: the docstring of each package no old module becomes.

Why a script and not a series of commits: other branches change the code in the
old layout while this is written; the integrator merges them, adds what they added
to the tables (the script refuses to run, listing it, while a module is missing)
and runs this once on the merged tree. It is deterministic, and a second run on
the result finds nothing to do.

Every reference is rewritten across the repository's tracked text files: import
statements (a submodule imported as a name becomes ``from package import new as
old``, so the code using it is unchanged), dotted names anywhere in text (rq job
paths, settings, import-linter contracts, docs), ``notification/…py`` and
``tests/…py`` paths. Dotted names are matched whole, longest known module first,
so ``notification.sending`` never rewrites ``notification.sending_x``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

# --------------------------------------------------------------------------------------
# The mapping (old dotted module -> new dotted module)
# --------------------------------------------------------------------------------------

MODULES: dict[str, str] = {
    # Where Django people look: stays at the top.
    "notification": "notification",
    "notification.admin": "notification.admin",
    "notification.api": "notification.api",
    "notification.apps": "notification.apps",
    "notification.checks": "notification.checks",
    "notification.conf": "notification.conf",
    "notification.exceptions": "notification.exceptions",
    "notification.models": "notification.models",
    "notification.signals": "notification.signals",
    "notification.urls": "notification.urls",
    # Public dotted paths a host's settings name (CSRF_FAILURE_VIEW, uvicorn --http).
    "notification.csrf": "notification.csrf",
    "notification.http_guard": "notification.http_guard",
    "notification.instruments": "notification.instruments",
    "notification.management": "notification.management",
    "notification.management.commands": "notification.management.commands",
    **{
        f"notification.management.commands.{name}": f"notification.management.commands.{name}"
        for name in (
            "reconcile_sms",
            "schedule_sms",
            "send_sms_batch",
            "sms_scheduler",
            "sms_worker",
        )
    },
    # The values every layer shares (the model's validators use them).
    "notification.phone": "notification.values",
    "notification.text": "notification.values",
    "notification.segments": "notification.values",
    "notification.ids": "notification.values",
    "notification.db_threads": "notification.connections",
    "notification.redis_connection": "notification.connections",
    "notification.layer_send": "notification.connections",
    # The rules of a valid notification, one validator a field: beside the models,
    # where Django people look for them.
    "notification.validators": "notification.validators",
    # The delivery rules: one module (it was seven of 10-62 lines).
    "notification.delivery": "notification.delivery",
    "notification.delivery.statuses": "notification.delivery",
    "notification.delivery.retry": "notification.delivery",
    "notification.delivery.error_codes": "notification.delivery",
    "notification.delivery.payload": "notification.delivery",
    "notification.delivery.optouts": "notification.delivery",
    "notification.delivery.reports": "notification.delivery",
    # Flow 1: create.
    "notification.operations": "notification.create",
    "notification.operations.creation": "notification.create.creation",
    "notification.operations.validation": "notification.create.validation",
    "notification.operations.changes": "notification.create.changes",
    "notification.idempotency": "notification.create.idempotency",
    "notification.idempotency.checks": "notification.create.idempotency",
    "notification.idempotency.fingerprint": "notification.create.idempotency",
    "notification.idempotency.expiry": "notification.create.idempotency",
    "notification.idempotency.claims": "notification.create.idempotency",
    # Flow 2: send (the paced run and its batches).
    "notification.sending": "notification.send",
    "notification.sending.pacing": "notification.send.run",
    "notification.sending.plan": "notification.send.run",
    "notification.sending.batch": "notification.send.batch",
    "notification.sending.recovery": "notification.send.batch",
    "notification.sending.selection": "notification.send.claim",
    "notification.sending.claiming": "notification.send.claim",
    "notification.sending.lock": "notification.send.wake",
    "notification.sending.queue_estimate": "notification.send.wake",
    "notification.sending.wake": "notification.send.wake",
    "notification.sending.result_retry": "notification.connections",
    "notification.sending.dispatch_log": "notification.send.dispatch",
    "notification.sending.dispatch": "notification.send.dispatch",
    "notification.sending.bulk_write": "notification.send.results",
    "notification.sending.results": "notification.send.results",
    # Flow 3: status (arrive -> store -> announce).
    "notification.tracking": "notification.status",
    "notification.webhooks": "notification.status.webhooks",
    "notification.webhooks.keywords": "notification.status.webhooks",
    "notification.webhooks.inbound": "notification.status.webhooks",
    "notification.webhooks.fast_path": "notification.status.webhooks",
    "notification.webhooks.views": "notification.status.webhooks",
    "notification.tracking.status": "notification.status.apply",
    "notification.tracking.forward": "notification.status.forward",
    "notification.tracking.adopt": "notification.status.early",
    "notification.tracking.early": "notification.status.early",
    "notification.events": "notification.status.events",
    # The RQ job functions: their dotted paths are public (queued jobs, SMS_SCHEDULE).
    "notification.jobs": "notification.jobs",
    "notification.jobs.sms": "notification.jobs.sms",
    "notification.jobs.reconcile": "notification.jobs.reconcile",
    "notification.jobs.last_run": "notification.jobs.reconcile",
    "notification.jobs.idempotency": "notification.jobs.idempotency",
    "notification.jobs.schedule": "notification.jobs.schedule",
    "notification.jobs.scheduling": "notification.jobs.schedule",
    "notification.processes": "notification.processes",
    "notification.processes.outage": "notification.processes",
    "notification.processes.scheduler": "notification.processes",
    "notification.processes.worker": "notification.processes",
    "notification.reconciliation": "notification.reconciliation",
    "notification.reconciliation.rows": "notification.reconciliation.rows",
    "notification.reconciliation.absence": "notification.reconciliation.rows",
    "notification.reconciliation.passes": "notification.reconciliation.passes",
    "notification.guardrails": "notification.guardrails",
    "notification.guardrails.screen": "notification.guardrails.screen",
    # Where and when a recipient may be texted: their country, their time of day.
    "notification.guardrails.countries": "notification.guardrails.places",
    "notification.guardrails.quiet_hours": "notification.guardrails.places",
    "notification.guardrails.recipients": "notification.guardrails.costs",
    "notification.guardrails.pricing": "notification.guardrails.costs",
    "notification.guardrails.spend": "notification.guardrails.costs",
    "notification.guardrails.reported": "notification.guardrails.costs",
    "notification.throttle": "notification.throttle",
    # A host's AUTHENTICATION_BACKENDS names notification.throttle.login.LoginLockoutBackend.
    "notification.throttle.login": "notification.throttle.login",
    "notification.throttle.counters": "notification.throttle.limits",
    "notification.throttle.user_limits": "notification.throttle.limits",
    "notification.ops": "notification.ops",
    "notification.ops.urls": "notification.ops.urls",
    "notification.ops.cache": "notification.ops.probes",
    "notification.ops.probes": "notification.ops.probes",
    "notification.ops.collector": "notification.ops.metrics",
    "notification.ops.metrics": "notification.ops.metrics",
    "notification.ops.multiproc": "notification.ops.multiproc",
    # SMS_BACKEND paths stay valid: notification.backends.{twilio.TwilioBackend,
    # locmem.LocmemBackend, console.ConsoleBackend}.
    "notification.backends": "notification.backends",
    "notification.backends.base": "notification.backends.base",
    "notification.backends.console": "notification.backends.console",
    "notification.backends.locmem": "notification.backends.locmem",
    "notification.backends.twilio.account": "notification.backends.twilio",
    "notification.backends.twilio.overrides": "notification.backends.twilio",
    "notification.backends.twilio.client": "notification.backends.twilio",
    "notification.backends.twilio.signature": "notification.backends.twilio",
    "notification.backends.twilio": "notification.backends.twilio",
    "notification.backends.twilio.form_fields": "notification.backends.twilio_payloads",
    "notification.backends.twilio.payloads": "notification.backends.twilio_payloads",
    "notification.backends.twilio.failures": "notification.backends.twilio_payloads",
    "notification.backends.twilio.pricing": "notification.backends.twilio_payloads",
    # GraphQL.
    "notification.graphql": "notification.graphql",
    "notification.graphql.document_cost": "notification.graphql.cost",
    "notification.graphql.list_caps": "notification.graphql.cost",
    "notification.graphql.document_cache": "notification.graphql.cost",
    "notification.graphql.query_limits": "notification.graphql.query_limits",
    "notification.graphql.enums": "notification.graphql.filters",
    "notification.graphql.ordering": "notification.graphql.filters",
    "notification.graphql.filters": "notification.graphql.filters",
    "notification.graphql.permissions": "notification.graphql.filters",
    "notification.graphql.plain_fields": "notification.graphql.execution",
    "notification.graphql.types": "notification.graphql.types",
    "notification.graphql.field_errors": "notification.graphql.mutations",
    "notification.graphql.inputs": "notification.graphql.mutations",
    "notification.graphql.mutations": "notification.graphql.mutations",
    "notification.graphql.resend": "notification.graphql.mutations",
    "notification.graphql.throttles": "notification.graphql.throttles",
    "notification.graphql.queries": "notification.graphql.parts",
    "notification.graphql.parts": "notification.graphql.parts",
    "notification.graphql.http_only": "notification.graphql.views",
    "notification.graphql.views": "notification.graphql.views",
    "notification.graphql.websocket": "notification.graphql.ws.consumer",
    "notification.graphql.ws_authority": "notification.graphql.ws.authority",
    "notification.graphql.ws_parsing": "notification.graphql.ws.authority",
    "notification.graphql.ws_pace": "notification.graphql.ws.authority",
    "notification.graphql.ws_guard": "notification.graphql.ws.guard",
    "notification.graphql.subscriptions": "notification.graphql.ws.subscriptions",
}

_SUPPORT = [
    "browser_support",
    "fixtures_emulator",
    "fixtures_graphql",
    "fixtures_live",
    "fixtures_sending",
    "fixtures_services",
    "layer_helpers",
    "live_support",
    "outage_support",
    "pacing_support",
    "prometheus_support",
    "sending_helpers",
    "throttle_traffic",
    "waiting",
    "webhook_helpers",
    "settings_helpers",
]
_TEST_FOLDERS: dict[str, list[str]] = {
    "app": [
        "test_admin",
        "test_api",
        "test_checks",
        "test_settings_namespace",
        "test_exceptions",
        "test_signals",
        "test_migrations",
        "test_packaging",
        "test_host_project",
        "test_times",
    ],
    "create": [
        "test_idempotency",
        "test_idempotency_concurrency",
        "test_phone",
        "test_segments",
        "test_valid_notification",
    ],
    "send": [
        "test_send_command",
        "test_sending_backoff",
        "test_sending_batch",
        "test_sending_claims",
        "test_sending_dispatch",
        "test_sending_faults",
        "test_sending_jobs",
        "test_sending_pacing",
        "test_sending_pacing_callbacks",
        "test_sending_pacing_live",
        "test_sending_recovery",
        "test_sending_resend",
        "test_sending_result_retry",
        "test_sending_workers",
        "test_schedule",
    ],
    "status": [
        "test_webhooks_asgi",
        "test_webhooks_fuzz",
        "test_webhooks_hostile",
        "test_webhooks_inbound",
        "test_webhooks_publish",
        "test_webhooks_retry",
        "test_webhooks_status",
        "test_status_callback_urls",
        "test_status_listeners",
        "test_status_publishes",
        "test_reconcile",
    ],
    "graphql": [
        "test_graphql_auth",
        "test_graphql_cancel",
        "test_graphql_create",
        "test_graphql_document_cache",
        "test_graphql_fuzz",
        "test_graphql_plain_fields",
        "test_graphql_queries",
        "test_graphql_schema",
        "test_graphql_segments",
        "test_hostile_graphql",
        "test_hostile_round_two",
        "test_ownership",
        "test_cors_csrf",
        "test_throttles",
        "test_throttle_load",
    ],
    "graphql.ws": [
        "test_subscriptions_ws",
        "test_subscriber_stress",
        "test_ws_abuse",
        "test_ws_pace",
        "test_ws_parsing",
    ],
    "backends": ["test_backends", "test_twilio_client"],
    "guardrails": ["test_guardrails", "test_guardrails_workers"],
    "ops": [
        "test_ops_alert_rules",
        "test_ops_logging",
        "test_ops_metrics",
        "test_ops_multiproc",
        "test_ops_probes",
        "test_ops_prometheus",
        "test_error_logging",
        "test_statement_timeout",
    ],
    "project": [
        "test_browser",
        "test_devstack_redis_restart",
        "test_emulator",
        "test_infrastructure",
        "test_live_e2e",
        "test_self_healing_live",
        "test_server_head_limits",
        "test_server_limits",
        "test_static_files",
        "test_vendored_assets",
        "test_frontend_conventions",
    ],
}

TESTS: dict[str, str] = {
    "tests": "tests",
    "tests.conftest": "tests.conftest",
    "tests.run": "tests.run",
    "tests.settings": "tests.settings",
    # What it tests: creating and cancelling notifications (operations/creation.py).
    "tests.test_services": "tests.create.test_creation",
    **{f"tests.{name}": f"tests.support.{name}" for name in _SUPPORT},
    **{
        f"tests.{name}": f"tests.{folder}.{name}"
        for folder, names in _TEST_FOLDERS.items()
        for name in names
    },
}

#: Packages no old module becomes: their ``__init__`` docstrings.
NEW_PACKAGES: dict[str, str] = {
    "notification.graphql.ws": (
        "The GraphQL websocket: the consumer, who may subscribe to what and until when,\n"
        "the per-socket limits (``guard``), and the subscriptions themselves."
    ),
    "tests.support": "Test helpers and pytest plugins (``tests/conftest.py`` lists the plugins).",
    "tests.app": "Tests of the app's front: admin, front door, checks, signals, packaging.",
    "tests.create": "Tests of flow 1, create (``notification/create/``, ``values``).",
    "tests.send": "Tests of flow 2, send (``notification/send/``, ``jobs/``, ``processes``).",
    "tests.status": "Tests of flow 3, status (``notification/status/``, ``reconciliation/``).",
    "tests.graphql": "Tests of the GraphQL API over HTTP (``notification/graphql/``).",
    "tests.graphql.ws": "Tests of the GraphQL websocket (``notification/graphql/ws/``).",
    "tests.backends": "Tests of the SMS backends (``notification/backends/``).",
    "tests.guardrails": "Tests of the compliance and cost guardrails.",
    "tests.ops": "Tests of what operators see: probes, metrics, alert rules, logs.",
    "tests.project": "Tests of the project around the app: servers, devstack, emulator, browser.",
}

#: The import-linter layers contract (relative to ``notification``), top to bottom.
LAYERS: list[str] = [
    "admin | management | urls | ops | checks | api",
    "processes",
    "jobs | graphql",
    "create | reconciliation",
    "send | throttle",
    "guardrails",
    "status",
    "backends",
    "signals",
    "delivery",
    "models",
    "validators",
    "values | connections | instruments | http_guard | csrf",
    "conf",
    "exceptions",
]

#: Per-file text replacements applied after the move (new path -> [(old, new)]):
#: a test one folder deeper finds the repository root one level further up.
_ROOT = "Path(__file__).resolve().parent.parent"
_DEEPER = "Path(__file__).resolve().parents[2]"
_DEEPEST = "Path(__file__).resolve().parents[3]"

#: Text that names old folders (not modules), file -> [(old, new)]. A missing ``old``
#: is reported, not fatal: another branch may have reworded it.
FILE_EDITS: dict[str, list[tuple[str, str]]] = {
    "Makefile": [
        (
            "notification/sending/,notification/webhooks/,notification/tracking/,"
            "notification/delivery/,notification/backends/twilio/",
            "notification/send/,notification/status/,notification/delivery.py,"
            "notification/backends/twilio.py,notification/backends/twilio_payloads.py",
        )
    ],
    "README.md": [
        (
            "(`notification/sending/`, `webhooks/`, `tracking/`, `delivery/` and "
            "`backends/twilio/`)",
            "(`notification/send/`, `status/`, `delivery.py` and `backends/twilio*.py`)",
        )
    ],
    "tests/README.md": [
        (
            "tests.run --database sqlite tests/test_x.py",
            "tests.run --database sqlite tests/send/test_x.py",
        ),
        (
            "`sending/claiming.py`,\n  `sending/recovery.py`, `sending/bulk_write.py`, "
            "`tracking/forward.py`,\n  `idempotency/claims.py`",
            "`send/claim.py`,\n  `send/batch.py` (recovery), `send/results.py` (bulk writes), "
            "`status/forward.py`,\n  `create/idempotency.py`",
        ),
    ],
}

ROOTS = ("notification", "tests")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml", ".sh", ".rst"}
TEXT_NAMES = {"Makefile", "Procfile", "run", "Dockerfile"}


class RelayoutError(SystemExit):
    """A problem the integrator must fix in the tables (non-zero exit, message printed)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"relayout: {message}")


# --------------------------------------------------------------------------------------
# The tree
# --------------------------------------------------------------------------------------


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def module_path(name: str, packages: set[str]) -> Path:
    parts = name.split(".")
    if name in packages:
        return Path(*parts, "__init__.py")
    return Path(*parts[:-1], parts[-1] + ".py")


def modules_on_disk() -> dict[str, Path]:
    """Every module of the app (migrations aside) and of tests/ (host_project aside)."""
    found: dict[str, Path] = {}
    for root in ROOTS:
        for path in sorted(Path(root).rglob("*.py")):
            if "migrations" in path.parts or "host_project" in path.parts:
                continue
            if "__pycache__" in path.parts:
                continue
            parts = list(path.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def packages_of(names: set[str]) -> set[str]:
    """The names that have a submodule among ``names`` (they are packages)."""
    result = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts)):
            result.add(".".join(parts[:i]))
    return result


# --------------------------------------------------------------------------------------
# Rewriting references
# --------------------------------------------------------------------------------------


class Rewriter:
    """Old names and paths -> new, for import statements and any text."""

    def __init__(self, mapping: dict[str, str], old_paths: dict[str, Path]) -> None:
        self.mapping = mapping
        new_names = set(mapping.values()) | set(NEW_PACKAGES)
        self.new_packages = packages_of(new_names)
        self.old_paths = old_paths
        alternatives = "|".join(ROOTS)
        self.dotted = re.compile(rf"(?<![\w.])(?:{alternatives})(?:\.[A-Za-z_]\w*)+")
        self.path_re = re.compile(rf"(?<![\w/.])(?:{alternatives})/[\w/]+\.py\b")
        self.path_map = {
            str(path): str(module_path(mapping[name], self.new_packages))
            for name, path in old_paths.items()
            if name in mapping
        }

    def new_name(self, dotted: str) -> str:
        """``dotted`` with its longest old-module prefix replaced by the new module."""
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in self.mapping:
                return ".".join([self.mapping[prefix], *parts[i:]])
        return dotted

    def text(self, source: str) -> str:
        source = self.dotted.sub(lambda m: self.new_name(m.group(0)), source)
        return self.path_re.sub(lambda m: self.path_map.get(m.group(0), m.group(0)), source)

    def import_from(self, node: ast.ImportFrom, indent: str) -> str | None:
        """The new text of ``from old import names``, or None if unchanged."""
        module = node.module or ""
        if node.level or module.split(".")[0] not in ROOTS:
            return None
        groups: dict[str, list[str]] = defaultdict(list)
        for alias in node.names:
            as_name = alias.asname or alias.name
            submodule = f"{module}.{alias.name}"
            if submodule in self.mapping:  # a module imported as a name
                target = self.mapping[submodule]
                parent, _, last = target.rpartition(".")
                groups[parent].append(last if last == as_name else f"{last} as {as_name}")
            else:
                target = self.new_name(module)
                groups[target].append(
                    alias.name if alias.name == as_name else f"{alias.name} as {as_name}"
                )
        lines = [
            f"{indent}from {target} import {', '.join(names)}" for target, names in groups.items()
        ]
        return "\n".join(lines)

    def import_plain(self, node: ast.Import, indent: str) -> str | None:
        changed = False
        names = []
        for alias in node.names:
            new = self.new_name(alias.name)
            changed |= new != alias.name
            names.append(new if alias.asname is None else f"{new} as {alias.asname}")
        if not changed:
            return None
        return f"{indent}import {', '.join(names)}"

    def python(self, source: str) -> str:
        """Imports rewritten statement by statement, then dotted names and paths in the text."""
        tree = ast.parse(source)
        lines = source.splitlines(keepends=True)
        edits: list[tuple[int, int, str]] = []
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            first = lines[node.lineno - 1]
            indent = first[: len(first) - len(first.lstrip())]
            if first[node.col_offset :].startswith(("from", "import")) is False:
                continue
            if node.col_offset != len(indent):  # `x; import y`: not in this code base
                continue
            if isinstance(node, ast.ImportFrom):
                new = self.import_from(node, indent)
            else:
                new = self.import_plain(node, indent)
            if new is not None:
                end = node.end_lineno or node.lineno
                comment = lines[end - 1][node.end_col_offset or 0 :].rstrip("\r\n")
                edits.append((node.lineno, end, new, comment))
        for start, end, new, comment in sorted(edits, reverse=True):
            tail = lines[end - 1][len(lines[end - 1].rstrip("\r\n")) :] or "\n"
            if comment.strip():  # a `noqa: E402` comment and the like, on each new line
                new = "\n".join(line + "  " + comment.strip() for line in new.split("\n"))
            lines[start - 1 : end] = [new + tail]
        return self.text("".join(lines))


# --------------------------------------------------------------------------------------
# Merging modules
# --------------------------------------------------------------------------------------


class Part:
    """One old module's source, split into docstring, top-level imports and body."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.tree = ast.parse(source)
        lines = source.splitlines(keepends=True)
        body = self.tree.body
        self.docstring = ""
        skip: set[int] = set()
        first = body[0] if body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            segment = ast.get_source_segment(source, body[0]) or ""
            if segment[:1] in "rRbBuUfF":
                raise RelayoutError(f"{name}: a prefixed module docstring; merge it by hand")
            quote = segment[:3]
            self.docstring = segment[3:-3] if quote in ('"""', "'''") else segment[1:-1]
            skip.update(range(body[0].lineno, (body[0].end_lineno or 0) + 1))
        self.imports: list[ast.Import | ast.ImportFrom] = []
        self.import_text: list[str] = []
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                self.imports.append(node)
                self.import_text.append(
                    "".join(lines[node.lineno - 1 : node.end_lineno]).rstrip() + "\n"
                )
                skip.update(range(node.lineno, (node.end_lineno or 0) + 1))
        self.body = "".join(line for i, line in enumerate(lines, 1) if i not in skip).strip("\n")
        self.defined: dict[str, str] = {}
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                continue
            segment = ast.get_source_segment(source, node) or ""
            for target in _defined_names(node):
                self.defined[target] = segment

    def imported_names(self) -> dict[str, str]:
        """name -> where it comes from, for this part's top-level imports."""
        result = {}
        for node in self.imports:
            for alias in node.names:
                if isinstance(node, ast.ImportFrom):
                    result[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                else:
                    result[alias.asname or alias.name.split(".")[0]] = alias.name
        return result


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    if isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def merge(target: str, parts: list[Part]) -> str:
    """One module from several: docstring, hoisted imports, bodies in dependency order."""
    # Dependency order: a part that imports from another comes after it.
    order: list[Part] = []
    pending = list(parts)
    while pending:
        for part in pending:
            needs = {
                node.module
                for node in part.imports
                if isinstance(node, ast.ImportFrom) and node.module == target
            }
            deps = _part_dependencies(part, target, parts)
            if not (deps - {p.name for p in order}) or not needs and not deps:
                order.append(part)
                pending.remove(part)
                break
        else:
            raise RelayoutError(f"{target}: its parts import each other in a cycle")
    # Collisions: a top-level name defined twice differently, or defined and imported.
    seen: dict[str, tuple[str, str]] = {}
    duplicates: dict[str, set[str]] = defaultdict(set)  # part name -> names to drop
    problems = []
    for part in order:
        for name, segment in part.defined.items():
            if name in seen:
                if seen[name][1] == segment:
                    duplicates[part.name].add(name)
                else:
                    problems.append(f"{name!r} in {seen[name][0]} and {part.name}")
            else:
                seen[name] = (part.name, segment)
    imported: dict[str, str] = {}
    for part in order:
        for name, origin in part.imported_names().items():
            if name in seen and not origin.startswith(target + "."):
                problems.append(f"{name!r} defined in {seen[name][0]}, imported in {part.name}")
            if name in imported and imported[name] != origin:
                problems.append(f"{name!r} imported from {imported[name]} and from {origin}")
            imported.setdefault(name, origin)
    if problems:
        raise RelayoutError(f"merging into {target}, names collide: " + "; ".join(problems))

    # The docstring that opens the module: the part of the same name (the old package's
    # own docstring when a package becomes a module), else the lowest part.
    last = target.rsplit(".", 1)[-1]
    head = (
        next((p for p in order if p.name == target), None)
        or next((p for p in order if p.name.rsplit(".", 1)[-1] == last), None)
        or order[0]
    )
    doc = [head.docstring.strip("\n")]
    for part in order:
        if part is head or not part.docstring.strip():
            continue
        title = part.name.rsplit(".", 1)[-1].replace("_", " ").capitalize()
        doc.append(f"{title} (was ``{part.name}``):\n\n{part.docstring.strip()}")
    future, imports = [], []
    aliases_of_self: set[str] = set()
    #: ``from target import name as alias`` in a part: its body says ``name`` instead.
    renames: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for part in order:
        for node, text in zip(part.imports, part.import_text, strict=True):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                future.append(text)
                continue
            if isinstance(node, ast.ImportFrom) and node.module == target:
                for alias in node.names:
                    if alias.asname and alias.asname != alias.name:
                        renames[part.name].append((alias.asname, alias.name))
                continue  # the names are in this module now
            parent, _, last = target.rpartition(".")
            if isinstance(node, ast.ImportFrom) and node.module == parent:
                kept = []
                for alias in node.names:
                    if alias.name == last:
                        aliases_of_self.add(alias.asname or alias.name)
                    else:
                        kept.append(
                            alias.name if not alias.asname else f"{alias.name} as {alias.asname}"
                        )
                if len(kept) != len(node.names):
                    if kept:
                        imports.append(f"from {parent} import {', '.join(kept)}\n")
                    continue
            imports.append(text)
    bodies = []
    for part in order:
        body = part.body
        for name in duplicates.get(part.name, ()):
            body = body.replace(part.defined[name], "", 1)
        for alias, name in renames.get(part.name, ()):
            if name in part.defined or name in part.imported_names():
                raise RelayoutError(f"{part.name}: {alias} -> {name} collides; rename by hand")
            body = re.sub(rf"(?<![\w.]){re.escape(alias)}(?!\w)", name, body)
        for alias in aliases_of_self:
            body = re.sub(rf"(?<![\w.]){re.escape(alias)}\.(?=[A-Za-z_])", "", body)
        title = part.name.rsplit(".", 1)[-1]
        bodies.append(f"# {'-' * 8} {title} {'-' * (78 - len(title))}\n\n{body.strip()}\n")
    docstring = '"""' + "\n\n".join(doc).strip() + '\n"""\n'
    return (
        docstring
        + "\n"
        + "".join(dict.fromkeys(future))
        + "".join(dict.fromkeys(imports))
        + "\n\n"
        + "\n\n".join(bodies)
    )


def _part_dependencies(part: Part, target: str, parts: list[Part]) -> set[str]:
    """The other parts of ``target`` that ``part`` uses at import time (from its imports)."""
    names = {p.name for p in parts} - {part.name}
    deps = set()
    text = "".join(part.import_text)
    for name in names:
        if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", text):
            deps.add(name)
    # After rewriting, the parts import the target itself; use the defined names.
    defined_by = {n: p.name for p in parts if p is not part for n in p.defined}
    for node in part.imports:
        if isinstance(node, ast.ImportFrom) and node.module == target:
            for alias in node.names:
                if alias.name in defined_by:
                    deps.add(defined_by[alias.name])
    parent, _, last = target.rpartition(".")
    for node in part.imports:
        if isinstance(node, ast.ImportFrom) and node.module == parent:
            for alias in node.names:
                if alias.name == last:
                    as_name = alias.asname or alias.name
                    used = set(re.findall(rf"(?<![\w.]){re.escape(as_name)}\.(\w+)", part.body))
                    deps.update(defined_by[n] for n in used if n in defined_by)
    return deps


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def tracked_text_files() -> list[Path]:
    files = []
    for line in git("ls-files", "-z").split("\0"):
        if not line:
            continue
        path = Path(line)
        if (
            "vendor" in path.parts
            or not path.is_file()
            or path.resolve() == Path(__file__).resolve()
        ):  # this script's tables name the old modules on purpose
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES:
            files.append(path)
    return files


def check_tables(on_disk: dict[str, Path], mapping: dict[str, str]) -> None:
    missing = sorted(set(on_disk) - set(mapping))
    if missing:
        listing = "\n  ".join(f"{name}  ({on_disk[name]})" for name in missing)
        raise RelayoutError(
            "these modules are not in the tables (add them to MODULES or TESTS, mapped to "
            f"themselves if they stay):\n  {listing}"
        )
    gone = sorted(name for name in mapping if name not in on_disk)
    if gone:
        print("relayout: in the tables but not in the tree (ignored):", ", ".join(gone))


def already_done(on_disk: dict[str, Path], mapping: dict[str, str]) -> bool:
    new_names = set(mapping.values())
    return set(on_disk) <= new_names | set(NEW_PACKAGES) and not (
        set(on_disk) & (set(mapping) - new_names)
    )


def write_pyproject_layers() -> None:
    path = Path("pyproject.toml")
    text = path.read_text()
    pattern = re.compile(
        r'(name = "The app\'s layers[^\n]*\ntype = "layers"\ncontainers = \["notification"\]\n'
        r"layers = \[\n)(.*?)(\n\])",
        re.S,
    )
    if not pattern.search(text):
        raise RelayoutError("pyproject.toml: the layers contract was not found")
    body = "\n".join(f'    "{layer}",' for layer in LAYERS)
    path.write_text(pattern.sub(lambda m: m.group(1) + body + m.group(3), text, count=1))


def main() -> int:
    if git("status", "--porcelain", "--untracked-files=no").strip():
        raise RelayoutError("the tree has uncommitted changes; commit or stash them first")
    mapping = {**MODULES, **TESTS}
    on_disk = modules_on_disk()
    if already_done(on_disk, mapping):
        print("relayout: the tree already has the new layout; nothing to do")
        return 0
    check_tables(on_disk, mapping)
    mapping = {old: new for old, new in mapping.items() if old in on_disk}
    rewriter = Rewriter(mapping, on_disk)
    new_packages = rewriter.new_packages
    again = sorted(new for new in set(mapping.values()) if rewriter.new_name(new) != new)
    if again:
        raise RelayoutError(
            "these new names start with an old name mapped elsewhere (rename them): "
            + ", ".join(again)
        )

    # 1. Rewrite references in every tracked text file (in memory: nothing is written
    #    until every merge has been built, so a refusal leaves the tree as it was).
    rewritten: dict[Path, str] = {}
    for path in tracked_text_files():
        source = path.read_text()
        try:
            new = rewriter.python(source) if path.suffix == ".py" else rewriter.text(source)
        except SyntaxError as error:
            raise RelayoutError(f"{path}: {error}") from error
        if new != source:
            rewritten[path] = new

    # 2. Group by target: pure moves and merges.
    by_target: dict[str, list[str]] = defaultdict(list)
    for old, new in mapping.items():
        by_target[new].append(old)
    contents: dict[Path, str] = {}
    moves: list[tuple[Path, Path]] = []
    refusals: list[str] = []
    for target, olds in sorted(by_target.items()):
        destination = module_path(target, new_packages)
        if len(olds) == 1:
            source = on_disk[olds[0]]
            if source != destination:
                moves.append((source, destination))
            continue
        parts = [Part(old, rewritten.get(on_disk[old]) or on_disk[old].read_text()) for old in olds]
        try:
            contents[destination] = merge(target, parts)
        except RelayoutError as error:
            refusals.append(str(error.code))
    if refusals:
        raise RelayoutError("cannot merge:\n  " + "\n  ".join(refusals))

    # 3. Apply: references, merged sources out, pure moves (git mv keeps history),
    #    merged modules in.
    for path, text in rewritten.items():
        path.write_text(text)
    merged_sources = [on_disk[o] for t, olds in by_target.items() if len(olds) > 1 for o in olds]
    for source in merged_sources:
        git("rm", "-q", "--cached", str(source))
        source.unlink()
    for source, destination in moves:
        if destination.exists():
            raise RelayoutError(f"moving {source}: {destination} exists")
        destination.parent.mkdir(parents=True, exist_ok=True)
        git("mv", str(source), str(destination))
    for destination, text in contents.items():
        if destination.exists():
            raise RelayoutError(f"merging into {destination}: it exists")
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text)
    for package in sorted(new_packages):
        init = Path(*package.split("."), "__init__.py")
        if not init.exists():
            doc = NEW_PACKAGES.get(package)
            if doc is None:
                raise RelayoutError(f"{package}: a new package without a docstring in NEW_PACKAGES")
            init.parent.mkdir(parents=True, exist_ok=True)
            init.write_text(f'"""{doc}"""\n')
    for root in ROOTS:  # empty folders left behind
        for folder in sorted(Path(root).rglob("*"), key=lambda p: -len(p.parts)):
            if folder.is_dir() and not any(p for p in folder.iterdir() if p.name != "__pycache__"):
                for cache in folder.glob("__pycache__"):
                    subprocess.run(["rm", "-rf", str(cache)], check=True)
                folder.rmdir()

    # 4. Tests one or two folders deeper find the repository root further up.
    for old, new in mapping.items():
        if old.startswith("tests.") and new.count(".") > old.count("."):
            path = module_path(new, new_packages)
            depth = new.count(".") - old.count(".")
            text = path.read_text().replace(_ROOT, _DEEPER if depth == 1 else _DEEPEST)
            path.write_text(text)

    for name, edits in FILE_EDITS.items():
        path = Path(name)
        text = path.read_text()
        for before, after in edits:
            if before in text:
                text = text.replace(before, after)
            else:
                print(f"relayout: {name}: text to edit not found (check by hand): {before!r}")
        path.write_text(text)
    write_pyproject_layers()
    git("add", "-A", *ROOTS, "pyproject.toml")
    ruff = str(Path(sys.executable).with_name("ruff"))
    changed = [str(module_path(t, new_packages)) for t in by_target]
    subprocess.run([ruff, "check", "-q", "--select", "I,F401,F811", "--fix", *changed], check=False)
    subprocess.run([ruff, "check", "-q", "--select", "I", "--fix", "."], check=False)
    subprocess.run([ruff, "format", "-q", "."], check=True)
    git("add", "-A")
    print(
        f"relayout: {len(moves)} moved, {len(contents)} merged from {len(merged_sources)} modules"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
