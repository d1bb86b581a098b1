"""Writes for reports: request one, build it in the worker with progress, record failure."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from crackportal import jobs
from crackportal.reports.models import Report


def request_report(*, run, kind: str, user=None) -> Report:
    """Queue a report of one inspection; the worker builds it after the row is committed."""
    if kind not in Report.Kind.values:
        raise ValueError(
            f"unknown report kind {kind!r}; choose one of {', '.join(Report.Kind.values)}"
        )
    if run.tunnel.require_review:
        from crackportal.inspections.reviews import review_progress

        progress = review_progress(run)
        if not progress["complete"]:
            raise ValueError(
                f"{run.tunnel.code} requires review before a report: {progress['reviewed']} of "
                f"{progress['images']} images are reviewed"
            )
    latest = Report.objects.filter(run=run, kind=kind).order_by("-version").first()
    report = Report.objects.create(
        run=run,
        kind=kind,
        created_by=user,
        message="queued",
        version=(latest.version + 1) if latest else 1,
    )
    transaction.on_commit(lambda: _enqueue(report.pk))
    return report


def _enqueue(report_id: int) -> None:
    from crackportal.reports.tasks import build_report_task

    build_report_task.delay(report_id)


def _set_progress(report_id: int, fraction: float, message: str) -> None:
    Report.objects.filter(pk=report_id).update(
        progress=round(min(max(fraction, 0), 1), 3), message=message[:200]
    )


def build_report(*, report_id: int) -> bool:
    """Build a queued report; returns False when another worker has it or it is finished."""
    claimable = Report.objects.filter(
        pk=report_id, status__in=[Report.Status.QUEUED, Report.Status.RUNNING]
    )
    if not jobs.claim(
        claimable, status=Report.Status.RUNNING, progress=0.0, message="starting", error=""
    ):
        return False
    report = Report.objects.select_related("run__tunnel").get(pk=report_id)

    def progress(fraction, message):
        _set_progress(report_id, fraction, message)

    source = None
    if report.kind == Report.Kind.PDF and report.locked and report.source:
        # approval: the stored HTML stamped, so the approved PDF says what was reviewed
        from crackportal.reports.pdf import render_pdf, stamp

        progress(0.5, "stamping the approval")
        with report.source.open("rb") as fh:
            content = render_pdf(stamp(fh.read().decode(), report))
    elif report.kind == Report.Kind.PDF:
        from crackportal.reports.pdf import build_pdf

        content, source = build_pdf(report.run, progress, report)
    else:
        from crackportal.reports.exports import xlsx_bytes

        content = xlsx_bytes(report.run, progress)
    old_file = report.file.name
    with transaction.atomic():
        report.file.save(report.filename, ContentFile(content), save=False)
        if source is not None:
            report.source.save(report.filename + ".html", ContentFile(source.encode()), save=False)
        Report.objects.filter(pk=report_id).update(
            file=report.file.name,
            source=report.source.name,
            status=Report.Status.DONE,
            progress=1.0,
            message=f"{len(content) // 1024} KB",
            finished_at=timezone.now(),
        )
        if old_file and old_file != report.file.name:  # the draft an approval replaced
            storage = report.file.storage
            transaction.on_commit(lambda: storage.delete(old_file))
    return True


class ApprovalError(ValueError):
    pass


def approve_report(*, report: Report, user) -> Report:
    """Approve a finished PDF report: kept who and when, the PDF stamped by a worker from its
    stored HTML (same figures), and locked from then on (a change needs a new version)."""
    if report.kind != Report.Kind.PDF:
        raise ApprovalError("only a PDF report is approved")
    if report.status != Report.Status.DONE or not report.source:
        raise ApprovalError("the report must be built before it is approved")
    with transaction.atomic():
        changed = Report.objects.filter(pk=report.pk, approved_at__isnull=True).update(
            approved_by=user,
            approved_at=timezone.now(),
            status=Report.Status.QUEUED,
            progress=0.0,
            message="stamping the approval",
        )
        if not changed:
            raise ApprovalError(f"version {report.version} is already approved and locked")
        transaction.on_commit(lambda: _enqueue(report.pk))
    report.refresh_from_db()
    return report


def mark_report_failed(*, report_id: int, error: str | BaseException) -> None:
    """Record why a report failed (an exception's traceback goes to the log)."""
    jobs.fail(Report, report_id, error, message="failed", finished_at=timezone.now())
