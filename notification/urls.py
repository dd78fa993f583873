"""Twilio webhook routes (included at the site root by ``config.urls``)."""

from django.urls import path

from notification.status import webhooks as views

app_name = "notification"

urlpatterns = [
    path("twilio/sms/status/", views.sms_status_callback, name="twilio-sms-status"),
    path("twilio/sms/inbound/", views.sms_inbound, name="twilio-sms-inbound"),
]
