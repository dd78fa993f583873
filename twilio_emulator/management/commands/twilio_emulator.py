"""``python manage.py twilio_emulator``: run the Twilio-compatible emulator until stopped.

Prints exactly one line to stdout, ``Twilio emulator listening on http://HOST:PORT``
(tests and scripts parse it, so ``--port 0`` is usable), then serves until SIGINT
or SIGTERM and exits cleanly.
"""

import signal
import sys
import threading

from django.core.management.base import BaseCommand, CommandParser

from notification.conf import app_settings
from twilio_emulator import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, EmulatorConfig, EmulatorServer


class Command(BaseCommand):
    help = "Run a local Twilio-compatible Messages API (with signed status callbacks)."

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = EmulatorConfig()
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
        parser.add_argument("--account-sid", default="", help="default: TWILIO_ACCOUNT_SID")
        parser.add_argument("--auth-token", default="", help="default: TWILIO_AUTH_TOKEN")
        parser.add_argument("--latency-ms", type=int, default=defaults.latency_ms)
        parser.add_argument(
            "--drain-rate",
            type=float,
            default=None,
            help="segments/s per sender (default: TWILIO_SMS_RATE, i.e. 1)",
        )
        parser.add_argument(
            "--queue-limit",
            type=int,
            default=None,
            help="segments per sender queue (default: TWILIO_SMS_QUEUE_LIMIT, i.e. 36000)",
        )
        parser.add_argument("--callback-delay-ms", type=int, default=defaults.callback_delay_ms)
        parser.add_argument("--no-callbacks", action="store_true")

    def handle(self, *args: object, **options: object) -> None:
        account_sid = options["account_sid"] or app_settings.TWILIO_ACCOUNT_SID
        auth_token = options["auth_token"] or app_settings.TWILIO_AUTH_TOKEN
        if not account_sid and not auth_token:
            account_sid, auth_token = DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
            self.stderr.write(
                "No Twilio credentials configured; using development credentials "
                f"TWILIO_ACCOUNT_SID={account_sid} TWILIO_AUTH_TOKEN={auth_token}"
            )
        elif not (account_sid and auth_token):
            self.stderr.write("Set both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or neither.")
            sys.exit(2)

        drain_rate = options["drain_rate"] or app_settings.TWILIO_SMS_RATE
        queue_limit = options["queue_limit"] or app_settings.TWILIO_SMS_QUEUE_LIMIT
        try:
            config = EmulatorConfig().updated(
                {
                    "latency_ms": options["latency_ms"],
                    "drain_rate": drain_rate,
                    "queue_limit": queue_limit,
                    "callback_delay_ms": options["callback_delay_ms"],
                    "callbacks_enabled": not options["no_callbacks"],
                }
            )
        except ValueError as exc:
            self.stderr.write(f"Invalid option: {exc}")
            sys.exit(2)

        server = EmulatorServer(
            account_sid=str(account_sid),
            auth_token=str(auth_token),
            host=str(options["host"]),
            port=int(options["port"]),
            config=config,
        )
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        server.start()
        sys.stdout.write(f"Twilio emulator listening on {server.base_url}\n")
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()
