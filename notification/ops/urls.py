"""The probes and ``/metrics``: include at the site root (``path("", include(...))``)."""

from django.urls import path

from notification.ops import metrics, probes

app_name = "notification-ops"

urlpatterns = [
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
]
