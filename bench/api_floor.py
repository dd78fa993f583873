"""The floor ``bench/api.py`` compares the GraphQL API with: plain Django views.

They do the ORM work of ``createSmsNotification`` and of listing 100 notifications
with their SMS, and answer JSON of the same fields, behind the project's whole
middleware stack (sessions, CSRF, auth, CORS...), with no GraphQL: what the
same request costs when nothing but Django and the database is in the way.
Bench-only: ``bench/settings_api.py`` routes them; the app never serves them.
"""

import json

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns
from notification.models import Notification, SmsNotification

LIST_FIELDS = (
    "id",
    "title",
    "status",
    "created_datetime",
    "sms__to_phone_number",
    "sms__delivery_status",
    "sms__segments",
)


def create(request: HttpRequest) -> JsonResponse:
    if request.method != "POST" or not request.user.is_authenticated:
        return JsonResponse({"error": "forbidden"}, status=403)
    data = json.loads(request.body)
    with transaction.atomic():
        note = Notification.objects.create(
            title=data["title"],
            body=data["body"],
            user_id=data.get("userId"),
            created_by=request.user,
        )
        sms = SmsNotification.objects.create(
            notification=note, to_phone_number=data["toPhoneNumber"], segments=1
        )
    return JsonResponse(
        {"notification": {"id": note.pk, "status": note.status}, "sms": {"id": sms.pk}}
    )


def listing(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"error": "forbidden"}, status=403)
    rows = list(Notification.objects.order_by("-pk").values(*LIST_FIELDS)[:100])
    total = Notification.objects.count()
    return JsonResponse({"totalCount": total, "results": rows})


urlpatterns = [
    path("floor/create/", create),
    path("floor/list/", listing),
    *project_urlpatterns,
]
