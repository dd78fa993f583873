from django.apps import AppConfig


class DevstackConfig(AppConfig):
    """Installed by the development project only, for ``ensure_dev_superuser``."""

    name = "devstack"
    verbose_name = "Development stack"
