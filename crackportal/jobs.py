"""One lifecycle for background jobs: survey images, reports and training runs.

claim → progress → finish | fail. A claim is a conditional UPDATE that exactly one worker
wins (run twice safely); a failure is logged with its traceback and its reason is stored on
the row, so the job's page shows it and a retry starts from a clean state. Every job model
has `status` (with Status.FAILED) and `error` fields.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError

ERROR_MAX_CHARS = 2000

log = logging.getLogger("crackportal.jobs")


def claim(queryset, **changes) -> bool:
    """Move the one row of queryset (already filtered by pk and claimable status) on; True if we won."""
    return queryset.update(**changes) == 1


def error_text(error: str | BaseException) -> str:
    """The reason a user reads: the exception's type and message, shortened; never SQL."""
    if isinstance(error, DatabaseError):
        # a database message can quote the statement and its values: those stay in the log
        text = (
            f"{type(error).__name__}: the database refused the change (details in the worker log)"
        )
    elif isinstance(error, BaseException):
        text = f"{type(error).__name__}: {error}".rstrip(": ")
    else:
        text = error
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"


def fail(model, pk: int, error: str | BaseException, **changes) -> bool:
    """Mark one job failed with its reason (an exception is logged with its traceback)."""
    what = f"{model._meta.model_name} {pk}"
    if isinstance(error, BaseException):
        log.error("%s failed", what, exc_info=(type(error), error, error.__traceback__))
    else:
        log.warning("%s failed: %s", what, error)
    updated = model.objects.filter(pk=pk).update(
        status=model.Status.FAILED, error=error_text(error), **changes
    )
    return updated == 1
