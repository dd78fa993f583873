"""The committed migrations match the models: a model change without its migration fails here."""

from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.db_vendor


@pytest.mark.django_db
def test_no_model_change_is_missing_a_migration() -> None:
    output = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=output, stderr=output)
    except SystemExit as exit_:
        pytest.fail(f"missing migrations (exit {exit_.code}):\n{output.getvalue()}")
