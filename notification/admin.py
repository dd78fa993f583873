"""Admin for notifications, their SMS delivery records and opt-outs.

Delivery fields are read-only everywhere: they are what Twilio told us, and
editing them by hand could make the send job resend a message. Content fields
lock once a notification has left ``pending`` for the same reason. State
changes go through actions that use the same service functions as the API
(``ACTIONS`` below: cancel and resend; add new ones there).
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from notification.create.changes import (
    NotificationNotCancelable,
    cancel_notification,
    resend_notifications,
)
from notification.guardrails import places as quiet_hours
from notification.models import (
    Notification,
    NotificationStatusChoices,
    NotificationTypeChoices,
    SmsNotification,
    SmsOptOut,
)
from notification.values import normalize_phone_number, segment_fields

# What Twilio and the send job wrote: never edited by hand.
SMS_DELIVERY_FIELDS = (
    "twilio_sid",
    "sender",
    "delivery_status",
    "error_code",
    "error_message",
    "segments",
    "encoding",
    "attempts",
    "next_attempt_datetime",
    "estimated_price",
    "priced_datetime",
    "price",
    "price_unit",
    "claimed_datetime",
    "claim_token",
    "send_started_datetime",
    "sent_datetime",
    "delivered_datetime",
    "status_updated_datetime",
)
NOTIFICATION_CONTENT_FIELDS = (
    "title",
    "body",
    "url",
    "type",
    "user",
    "publish_datetime",
    "priority",
    "category",
    "content_type",
    "object_id",
)
# ``created_by`` is who made the row (the admin user, or the API caller): never edited.
NOTIFICATION_STATE_FIELDS = (
    "created_by",
    "status",
    "status_message",
    "sent_datetime",
    "created_datetime",
    "updated_datetime",
)


def _is_pending(notification: Notification | None) -> bool:
    return notification is None or notification.status == NotificationStatusChoices.PENDING


class PhoneNumberFormField(forms.CharField):
    """Reads a national or E.164 number into E.164, as the API does (an unreadable one
    is a form error, not a 500). Whether it may be stored or texted is the model
    field's rule (``notification.validators``), which the form then runs."""

    def to_python(self, value: str | None) -> str:
        text: str = super().to_python(value) or ""
        return normalize_phone_number(text) if text else text


CLAIMED_WHILE_EDITING = (
    "This notification was picked up for sending (it is now %(status)s) while you were "
    "editing it; nothing was saved. Reload the page to see it as it is now."
)


class NotificationAdminForm(forms.ModelForm):
    """The guard against saving over a claim (what a valid notification is, the
    model's fields say: ``ModelForm`` runs their validators).

    No Meta: ``NotificationAdmin`` supplies model and fields. ``editing_status`` is
    the status the page was rendered with (a hidden field): a change page opened
    while pending can only be saved if the row is *still* pending, checked under a
    row lock (``select_for_update``) inside the admin's transaction, so a send
    worker cannot claim it between this check and the save.
    """

    editing_status = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["editing_status"].initial = self.instance.status

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.instance.pk is None:
            return cleaned
        current = (
            Notification.objects.select_for_update()
            .filter(pk=self.instance.pk)
            .values_list("status", flat=True)
            .first()
        )
        edited_while_pending = (
            self.cleaned_data.get("editing_status") or self.instance.status
        ) == NotificationStatusChoices.PENDING
        if edited_while_pending and current != NotificationStatusChoices.PENDING:
            raise forms.ValidationError(
                CLAIMED_WHILE_EDITING, code="claimed", params={"status": current}
            )
        return cleaned


class SmsNotificationInlineForm(forms.ModelForm):
    to_phone_number = PhoneNumberFormField(max_length=32, help_text="E.164, or a national number")

    class Meta:
        model = SmsNotification
        fields = ("to_phone_number", "recipient_time_zone")

    def clean_recipient_time_zone(self) -> str:
        value = self.cleaned_data.get("recipient_time_zone") or ""
        return quiet_hours.validate_time_zone(value) if value.strip() else ""

    def save(self, commit: bool = True) -> SmsNotification:
        """Write only the phone number (and the segments ``save()`` recounts) of an
        existing row: its claim and delivery fields belong to the send job, and
        writing back the values this page loaded could undo a claim."""
        sms = super().save(commit=False)
        if commit:
            if sms.pk is None:
                sms.save()
            else:
                sms.save(update_fields=["to_phone_number", "recipient_time_zone"])
        return sms


class SmsNotificationInlineFormSet(forms.BaseInlineFormSet):
    """An SMS notification needs its SMS row: without one it would never be sent."""

    def clean(self) -> None:
        super().clean()
        # An existing row counts even when all its fields are read-only (not pending).
        has_sms = any(form.instance.pk is not None or form.has_changed() for form in self.forms)
        if self.instance.type == NotificationTypeChoices.SMS and not has_sms:
            raise forms.ValidationError(
                "An SMS notification needs a phone number: fill in the SMS section.",
                code="required",
            )


class SmsNotificationInline(admin.StackedInline):
    model = SmsNotification
    form = SmsNotificationInlineForm
    formset = SmsNotificationInlineFormSet
    fields = ("to_phone_number", "recipient_time_zone", *SMS_DELIVERY_FIELDS)
    readonly_fields = SMS_DELIVERY_FIELDS
    can_delete = False
    extra = 1
    max_num = 1

    def get_readonly_fields(self, request: HttpRequest, obj: Notification | None = None):
        if _is_pending(obj):
            return self.readonly_fields
        return ("to_phone_number", "recipient_time_zone", *self.readonly_fields)


@admin.action(description="Cancel selected pending notifications")
def cancel_pending_notifications(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Notification]
) -> None:
    canceled = skipped = 0
    for notification_id in queryset.values_list("pk", flat=True):
        try:
            cancel_notification(notification_id, reason="Canceled by staff.")
            canceled += 1
        except (NotificationNotCancelable, Notification.DoesNotExist):
            skipped += 1
    modeladmin.message_user(request, f"Canceled {canceled} notification(s).", messages.SUCCESS)
    if skipped:
        modeladmin.message_user(
            request,
            f"{skipped} were no longer pending and were left as they are.",
            messages.WARNING,
        )


@admin.action(description="Resend selected unknown or failed SMS")
def resend_sms(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Notification]
) -> None:
    selected = list(queryset.values_list("pk", flat=True))
    resent = resend_notifications(selected)
    modeladmin.message_user(request, f"Queued {len(resent)} SMS to send again.", messages.SUCCESS)
    if len(resent) < len(selected):
        modeladmin.message_user(
            request,
            f"{len(selected) - len(resent)} were not unknown or failed SMS "
            "and were left as they are.",
            messages.WARNING,
        )


# Actions on notifications; add new ones to this list.
ACTIONS = [cancel_pending_notifications, resend_sms]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    form = NotificationAdminForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    inlines = [SmsNotificationInline]
    actions = ACTIONS
    list_display = (
        "id",
        "title",
        "type",
        "status",
        "priority",
        "category",
        "sms_to_phone_number",
        "sms_delivery_status",
        "publish_datetime",
        "created_datetime",
        "created_by",
    )
    list_filter = (
        "status",
        "type",
        "priority",
        "category",
        "sms__delivery_status",
        "publish_datetime",
    )
    search_fields = ("title", "sms__to_phone_number")
    list_select_related = ("sms", "created_by")
    raw_id_fields = ("user",)
    date_hierarchy = "created_datetime"
    fieldsets = (
        (None, {"fields": NOTIFICATION_CONTENT_FIELDS}),
        ("State", {"fields": NOTIFICATION_STATE_FIELDS}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Notification | None = None):
        # Status moves only through the send job, callbacks and actions:
        # editing it could queue a message a second time.
        if _is_pending(obj):
            return NOTIFICATION_STATE_FIELDS
        return (*NOTIFICATION_CONTENT_FIELDS, *NOTIFICATION_STATE_FIELDS)

    def get_fieldsets(self, request: HttpRequest, obj: Notification | None = None):
        # The hidden ``editing_status`` must be posted back (see the form).
        (name, options), *rest = super().get_fieldsets(request, obj)
        if obj is None:
            return [(name, options), *rest]
        return [(name, {**options, "fields": (*options["fields"], "editing_status")}), *rest]

    def save_model(
        self, request: HttpRequest, obj: Notification, form: forms.ModelForm, change: bool
    ) -> None:
        if not change:
            # Only logged-in staff reach the admin's add view: a real user.
            obj.created_by = request.user  # type: ignore[assignment]
            obj.save()
            return
        # Only what the page edits: status, claim and delivery state belong to the
        # send job (the form's clean() has locked the row and checked it is pending).
        editable = [name for name in NOTIFICATION_CONTENT_FIELDS if name in form.fields]
        obj.save(update_fields=[*editable, "updated_datetime"])

    def save_related(
        self, request: HttpRequest, form: forms.ModelForm, formsets, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        # The body may have changed without the SMS section: recount its segments.
        notification = form.instance
        if notification.status == NotificationStatusChoices.PENDING:
            SmsNotification.objects.filter(
                notification=notification, twilio_sid__isnull=True
            ).update(**segment_fields(notification.body))

    @admin.display(description="To", ordering="sms__to_phone_number")
    def sms_to_phone_number(self, obj: Notification) -> str:
        sms = getattr(obj, "sms", None)
        return sms.to_phone_number if sms else "-"

    @admin.display(description="Delivery status", ordering="sms__delivery_status")
    def sms_delivery_status(self, obj: Notification) -> str:
        sms = getattr(obj, "sms", None)
        return (sms.get_delivery_status_display() if sms else "") or "-"


@admin.register(SmsNotification)
class SmsNotificationAdmin(admin.ModelAdmin):
    """Delivery records, read-only: create SMS through a notification (or the API)."""

    list_display = (
        "id",
        "to_phone_number",
        "notification",
        "delivery_status",
        "segments",
        "encoding",
        "attempts",
        "estimated_price",
        "price",
        "error_code",
        "twilio_sid",
        "sent_datetime",
        "delivered_datetime",
    )
    list_filter = (
        "delivery_status",
        "notification__status",
        "notification__type",
        "notification__priority",
        "encoding",
        "error_code",
    )
    search_fields = ("to_phone_number", "notification__title", "twilio_sid")
    list_select_related = ("notification",)
    fields = ("notification", "to_phone_number", "recipient_time_zone", *SMS_DELIVERY_FIELDS)
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class SmsOptOutAdminForm(forms.ModelForm):
    phone_number = PhoneNumberFormField(max_length=32, help_text="E.164, or a national number")

    class Meta:
        model = SmsOptOut
        fields = ("phone_number", "source")


@admin.register(SmsOptOut)
class SmsOptOutAdmin(admin.ModelAdmin):
    form = SmsOptOutAdminForm
    list_display = ("phone_number", "source", "created_datetime")
    list_filter = ("source",)
    search_fields = ("phone_number",)
    date_hierarchy = "created_datetime"

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, str | list[str]]:
        return {"source": "admin", **super().get_changeform_initial_data(request)}
