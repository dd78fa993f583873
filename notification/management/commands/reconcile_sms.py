"""``manage.py reconcile_sms``: one reconciliation pass now; ``--dry-run`` changes nothing."""

from django.core.management.base import BaseCommand

from notification.reconciliation.passes import reconcile


class Command(BaseCommand):
    help = (
        "Ask Twilio about messages whose fate we do not know (unknown, or sent without a "
        "final status) and apply its answer; --dry-run prints what it would do."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="print each decision without changing anything",
        )

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        report = reconcile(dry_run=dry_run)
        if report.skipped:
            self.stdout.write(f"Skipped: {report.skipped}.")
            return
        if dry_run:
            self.stdout.write("Dry run: nothing is changed, nothing is sent.")
        for decision in report.decisions:
            self.stdout.write(
                f"SMS {decision.sms_id} (notification {decision.notification_id}): "
                f"{decision.action}: {decision.detail}"
            )
        self.stdout.write(report.log_line())
