"""Create the development superuser ``admin`` once and print its credentials.

``make run`` calls this on every start. The generated password is kept in
``.run/dev-superuser.json`` (git-ignored, readable only by its owner) so later
starts print the same credentials instead of creating new ones. It refuses to
run unless ``DEBUG`` is on: a production database must never get an account
whose password sits in a file.
"""

import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

USERNAME = "admin"


def credentials_file() -> Path:
    return Path(settings.BASE_DIR) / ".run" / "dev-superuser.json"


class Command(BaseCommand):
    help = "Create (once) the development superuser 'admin' and print its credentials. DEBUG only."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Give the existing user a new generated password.",
        )

    def handle(self, *args, reset: bool = False, **options) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "Refusing to create a development superuser: DJANGO_DEBUG is off "
                "(use `manage.py createsuperuser` for real accounts)."
            )
        user_model = get_user_model()
        path = credentials_file()
        user = user_model.objects.filter(username=USERNAME).first()
        stored = self._stored_password(path)

        if user is not None and not reset:
            if stored and user.check_password(stored):
                self._print(stored, created=False)
            else:
                self.stdout.write(
                    f"Superuser '{USERNAME}' exists with a password this command did not "
                    f"generate; run `manage.py ensure_dev_superuser --reset` for a new one."
                )
            return

        password = secrets.token_urlsafe(12)
        if user is None:
            user_model.objects.create_superuser(USERNAME, email="", password=password)
        else:
            user.set_password(password)
            user.is_staff = user.is_superuser = user.is_active = True
            user.save()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(json.dumps({"username": USERNAME, "password": password}) + "\n")
        self._print(password, created=True)

    @staticmethod
    def _stored_password(path: Path) -> str | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data.get("password") if data.get("username") == USERNAME else None

    def _print(self, password: str, *, created: bool) -> None:
        state = "created" if created else "exists"
        self.stdout.write(
            self.style.SUCCESS(f"Development superuser ({state}): {USERNAME} / {password}")
        )
