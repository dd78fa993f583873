from django.apps import AppConfig


class NotificationConfig(AppConfig):
    name = "notification"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Open websockets hear about logouts and user changes (ws_authority).
        from notification.graphql.ws_authority import connect_signals

        connect_signals()
