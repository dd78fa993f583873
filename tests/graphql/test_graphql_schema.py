"""The committed schema.graphql is what the server serves (frontends code against it)."""

from pathlib import Path

from strawberry.printer import print_schema

from schema.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
REGENERATE = "python manage.py export_schema schema.schema:schema --path schema.graphql"


def test_committed_schema_is_up_to_date():
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed.strip() == print_schema(schema).strip(), (
        f"schema.graphql is stale: run `{REGENERATE}` (or `make schema`) and commit it"
    )


def test_contract_names_frontends_rely_on():
    sdl = print_schema(schema)
    for name in [
        "login(username: String!, password: String!): User!",
        "logout: Boolean!",
        "createSmsNotification(input: CreateSmsNotificationInput!)",
        "createSmsNotifications(input: [CreateSmsNotificationInput!]!)",
        "cancelNotification(id: ID!)",
        "notifications(filters: NotificationFilter, order: [NotificationOrder!], "
        "pagination: OffsetPaginationInput)",
        "notification(id: ID!): Notification",
        "smsSegments(body: String!, toPhoneNumber: String = null): SmsSegments!",
    ]:
        assert name in sdl, name
