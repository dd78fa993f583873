from django.apps import AppConfig


class NotificationConfig(AppConfig):
    name = "notification"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from notification.sending.wake import connect_receivers

        connect_receivers()
