from django.apps import AppConfig


class NotificationConfig(AppConfig):
    name = "notification"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The system checks register themselves on import (notification/checks.py).
        from notification import checks  # noqa: F401

        # Open websockets hear about logouts and user changes (ws_authority).
        from notification.graphql.ws.authority import connect_signals

        connect_signals()

        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from notification.throttle import login

        # The login lockout counts through Django's own signals (throttle/login.py).
        user_login_failed.connect(login.record_failed_login, dispatch_uid="login-lockout")
        user_logged_in.connect(login.clear_account_failures, dispatch_uid="login-lockout")

        # A due HIGH notification starts (or wakes) a paced run at once (sending/wake.py).
        from notification.send.wake import connect_receivers

        connect_receivers()
