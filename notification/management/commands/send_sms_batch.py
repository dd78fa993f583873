"""``manage.py send_sms_batch``: run one SMS batch now and print what it did.

``--dry-run`` prints the pacing decision of a run right now (queue estimate,
target, what would be taken and what waits, and why) and what each compliance
and cost guardrail would hold back or refuse, and why, without claiming or
sending anything. The batch takes the same overlap lock as
the scheduled job unless ``--no-lock`` (for running several workers at once on
purpose: exactly-once comes from the row claims, not the lock).
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from notification.backends import get_backend
from notification.conf import app_settings
from notification.send.batch import BatchReport, run_batch
from notification.send.run import BatchPlan, plan_next_batch


class Command(BaseCommand):
    help = "Send one batch of due SMS now (or show it with --dry-run)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Show the next batch; send nothing."
        )
        parser.add_argument(
            "--no-lock",
            action="store_true",
            help="Do not take the overlap lock (several concurrent workers on purpose).",
        )
        parser.add_argument(
            "--batch-size", type=int, help="Segment budget (default TWILIO_SMS_BATCH_SIZE)."
        )
        parser.add_argument(
            "--until-empty",
            action="store_true",
            help="Repeat batches until one claims nothing (drain the backlog).",
        )

    def handle(
        self,
        *args,
        dry_run: bool,
        no_lock: bool,
        batch_size: int | None,
        until_empty: bool,
        **options,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        if dry_run:
            self._print_plan(plan_next_batch(timezone.now(), batch_size))
            return
        missing = get_backend().missing_settings()
        if missing:
            raise CommandError(f"Cannot send: missing setting(s) {', '.join(missing)}")
        if no_lock:
            self._run(batch_size, until_empty)
            return
        import django_rq

        from notification.send.wake import batch_lock

        with batch_lock(django_rq.get_connection(app_settings.SMS_QUEUE_NAME)) as acquired:
            if not acquired:
                self.stdout.write("Another batch run holds the lock; nothing done.")
                return
            self._run(batch_size, until_empty)

    def _run(self, batch_size: int | None, until_empty: bool) -> None:
        while True:
            report = run_batch(batch_segments=batch_size)
            self._print_report(report)
            if not until_empty or report.claimed == 0:
                return

    def _print_report(self, report: BatchReport) -> None:
        self.stdout.write(
            f"Claimed {report.claimed}: sent {report.sent} ({report.segments} segments), "
            f"failed {report.failed}, retry later {report.retried}, unknown {report.unknown}, "
            f"skipped (opted out) {report.skipped_opt_out}."
        )
        if report.held or report.refused:
            self.stdout.write(
                f"Guardrails: held {report.held} (pending, see their status message), "
                f"refused {report.refused} (failed, never sent)."
            )
        self.stdout.write(f"Twilio queue estimate before the batch: {report.queue_estimate}")
        if report.wait_reason:
            self.stdout.write(f"Batch shrunk: {report.wait_reason}.")
        if report.recovered_pending or report.recovered_unknown:
            self.stdout.write(
                f"Recovered stale claims: {report.recovered_pending} back to pending, "
                f"{report.recovered_unknown} marked unknown."
            )
        self.stdout.write(f"Took {report.duration_ms} ms.")

    def _print_plan(self, plan: BatchPlan) -> None:
        w = self.stdout.write
        w(
            f"Next batch (dry run, nothing sent) for sender {plan.sender or '(none configured)'}: "
            f"{len(plan.take)} message(s), {plan.segments} of {plan.batch_segments} segments."
        )
        w(f"Twilio queue estimate: {plan.queue_estimate} of {plan.queue_limit} segments.")
        w(
            f"Pacing: target {plan.queue_target} segments queued at Twilio "
            f"({app_settings.TWILIO_SMS_QUEUE_TARGET:g} s x {plan.rate:g} segments/s); "
            f"room now {max(plan.budget, 0)} segment(s)."
        )
        if plan.budget <= 0:
            w(
                f"  Nothing is taken now: the queue is at the target; it drains enough "
                f"in {plan.seconds_until_room:.1f} s."
            )
        for item in plan.take:
            note = "  (opted out: will fail, not sent)" if item.opted_out else ""
            w(
                f"  notification {item.notification_id}  priority {item.priority}  "
                f"to {item.to}  {item.segments} segment(s){note}"
            )
        w("Guardrails (quiet hours, country allow-list, spend limits):")
        if not plan.guarded:
            w("  nothing in this batch is held back or refused")
        for guarded in plan.guarded:
            until = guarded.until
            verdict = f"held until {until:%Y-%m-%d %H:%M} UTC" if until else "refused"
            w(
                f"  notification {guarded.notification_id}  to {guarded.to}  {verdict} "
                f"({guarded.rule}): {guarded.reason}"
            )
        for message, count in plan.already_held:
            w(f"  already waiting: {count} x {message}")
        w("Waiting:")
        reason = f" ({plan.wait_reason})" if plan.wait_reason else ""
        w(f"  due but not in this batch: {plan.left_waiting}{reason}")
        w(f"  in retry backoff: {plan.in_backoff}")
        w(f"  not due yet (publish time in the future): {plan.not_due_yet}")
