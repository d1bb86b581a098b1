"""Report pages: request a PDF / XLSX report, poll it, download it; CSV and GeoJSON stream directly."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from crackportal.accounts.roles import MANAGER, role_required
from crackportal.api.serializers import ReportSerializer
from crackportal.inspections.models import InspectionRun
from crackportal.reports import exports, services
from crackportal.reports.models import Report


def _run(request, pk: int) -> InspectionRun:
    return get_object_or_404(
        InspectionRun.objects.visible_to(request.user).select_related("tunnel"),
        pk=pk,
    )


def _report(request, pk: int) -> Report:
    return get_object_or_404(
        Report.objects.visible_to(request.user).select_related("run__tunnel"),
        pk=pk,
    )


@role_required(MANAGER)
@require_POST
def report_request(request, pk: int):
    run = _run(request, pk)
    kind = request.POST.get("kind", "")
    if kind not in Report.Kind.values:
        return HttpResponse(f"Unknown report kind {kind!r}.", status=400, content_type="text/plain")
    try:
        services.request_report(run=run, kind=kind, user=request.user)
    except ValueError as exc:
        messages.error(request, f"No report: {exc}.")
    else:
        messages.success(request, "Report queued: it appears under Reports when it is ready.")
    return redirect(f"{run.get_absolute_url()}#reports")


@role_required(MANAGER)
@require_POST
def report_approve(request, pk: int):
    """Approve a finished PDF report (the form asks for confirmation): stamped, then locked."""
    report = _report(request, pk)
    if request.POST.get("confirm") != "1":
        messages.error(request, "Tick the confirmation to approve: an approved report is locked.")
    else:
        try:
            services.approve_report(report=report, user=request.user)
        except services.ApprovalError as exc:
            messages.error(request, f"Not approved: {exc}.")
        else:
            messages.success(
                request,
                f"Version {report.version} approved: the PDF is stamped and locked; a change needs a new version.",
            )
    return redirect(f"{report.run.get_absolute_url()}#reports")


@role_required(MANAGER)
def report_status(request, pk: int):
    """The report row as the API shows it (the page polls this)."""
    return JsonResponse(ReportSerializer(_report(request, pk), context={"request": request}).data)


@role_required(MANAGER)
def report_download(request, pk: int):
    return download_response(_report(request, pk))


def download_response(report: Report) -> FileResponse:
    """The finished report file as an attachment (404 until it is done); pages and API use it."""
    if report.status != Report.Status.DONE or not report.file:
        raise Http404("This report is not ready.")
    from crackportal import media

    presigned = media.presigned_redirect(report.file, report.filename)
    if presigned is not None:
        return presigned
    return FileResponse(report.file.open("rb"), as_attachment=True, filename=report.filename)


def _attachment(response, run: InspectionRun, extension: str):
    name = f"{run.tunnel.code}-{run.date.isoformat()}-cracks.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@role_required(MANAGER)
def run_export_csv(request, pk: int):
    run = _run(request, pk)
    response = StreamingHttpResponse(exports.csv_lines(run), content_type="text/csv; charset=utf-8")
    return _attachment(response, run, "csv")


@role_required(MANAGER)
def run_export_geojson(request, pk: int):
    run = _run(request, pk)
    response = HttpResponse(exports.geojson_text(run), content_type="application/geo+json")
    return _attachment(response, run, "geojson")


@role_required(MANAGER)
def run_export_dxf(request, pk: int):
    """The unrolled crack map as a DXF drawing for the contractor's CAD."""
    run = _run(request, pk)
    response = HttpResponse(exports.dxf_bytes(run), content_type="image/vnd.dxf")
    return _attachment(response, run, "dxf")
