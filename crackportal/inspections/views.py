"""Pages for inspection runs and survey images (login required)."""

from __future__ import annotations

import logging
import re

from django.contrib import messages
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from crackportal import media
from crackportal.accounts.roles import ADMIN, INSPECTOR, MANAGER, has_role, role_required
from crackportal.assets.models import Tunnel
from crackportal.inspections import (
    annotations,
    condition,
    maps,
    reprocessing,
    reviews,
    selectors,
    services,
    thumbnails,
)
from crackportal.inspections.forms import FootprintForm, RunForm, UploadForm
from crackportal.inspections.growth import growth_per_year
from crackportal.inspections.models import Crack, InspectionRun, SurveyImage
from crackportal.inspections.severity import severity_colours
from crackportal.inspections.stationing import track_label
from crackportal.inspections.uploads import Footprint, IncomingFile, UploadError

log = logging.getLogger(__name__)

IMAGES_PER_PAGE = 100
_ID = re.compile(r"[0-9]{1,9}")  # ASCII digits only: "²" is a digit to str.isdigit


def _report_upload(request, result: services.UploadResult) -> None:
    if result.accepted:
        messages.success(
            request, f"{len(result.accepted)} image(s) stored and queued for crack detection."
        )
    for name, reason in result.failed:
        messages.error(request, f"{name}: {reason}")
    for name in result.duplicates:
        messages.warning(request, f"Already in this inspection, skipped: {name}")
    for warning in result.warnings:
        messages.warning(request, warning)


def _take_upload(request, run: InspectionRun, form: UploadForm) -> bool:
    files = [IncomingFile.from_upload(f) for f in form.cleaned_data["files"]]
    manifest = form.cleaned_data.get("manifest")
    try:
        result = services.upload_survey(
            run=run,
            files=files,
            manifest=IncomingFile.from_upload(manifest) if manifest else None,
            start_chainage_m=form.cleaned_data.get("start_chainage_m"),
            direction=form.cleaned_data["direction"],
        )
    except UploadError as exc:
        form.add_error("manifest", f"Manifest rejected, nothing was stored: {exc}")
        return False
    _report_upload(request, result)
    return True


@role_required(INSPECTOR)
def run_create(request, code: str):
    tunnel = get_object_or_404(Tunnel.objects.visible_to(request.user), code=code)
    form = RunForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        run = services.create_run(
            tunnel=tunnel,
            date=form.cleaned_data["date"],
            label=form.cleaned_data["label"],
            created_by=request.user,
        )
        if _take_upload(request, run, form):
            return redirect(run)
        run.delete()  # the manifest was refused before anything was stored

    return render(request, "inspections/run_form.html", {"tunnel": tunnel, "form": form})


@role_required(INSPECTOR)
def run_detail(request, pk: int):
    run = get_object_or_404(
        InspectionRun.objects.visible_to(request.user).select_related("tunnel", "model_version"),
        pk=pk,
    )
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid() and _take_upload(request, run, form):
        return redirect(run)
    sort = request.GET.get("sort", "chainage")
    sort = sort if sort in selectors.IMAGE_SORTS else "chainage"
    images = Paginator(selectors.images_with_crack_counts(run, sort), IMAGES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "inspections/run_detail.html",
        {
            "run": run,
            "tunnel": run.tunnel,
            "images": images,
            "sort": sort,
            "failed": selectors.failed_images(run)[:500],
            "archives": run.archives.all(),
            "reports": run.reports.select_related("created_by", "approved_by")[:20],
            "form": form,
            "progress": selectors.run_progress(run),
            "review": reviews.review_progress(run),
            **_reprocess_context(request, run),
        },
    )


def _reprocess_context(request, run) -> dict:
    """For admins: the models to reprocess with, and each earlier reprocess with its changes."""
    if not has_role(request.user, ADMIN):
        return {}
    from crackportal.modelops.models import ModelVersion

    now = reprocessing.run_summary(run)
    records = run.reprocessings.select_related("version", "previous_version", "requested_by")
    return {
        "model_versions": ModelVersion.objects.order_by("-is_active", "-created_at"),
        "reprocessings": [(r, reprocessing.changes(r.before, now)) for r in records[:5]],
    }


@role_required(ADMIN)
@require_POST
def run_reprocess(request, pk: int):
    """Segment the run again with a chosen model, then track it again."""
    from crackportal.modelops.models import ModelVersion

    run = get_object_or_404(InspectionRun.objects.visible_to(request.user), pk=pk)
    version = ModelVersion.objects.filter(pk=request.POST.get("version") or 0).first()
    if version is None:
        messages.error(request, "Choose a model version to reprocess with.")
    elif not request.POST.get("confirm"):
        messages.error(
            request,
            "Tick the box to confirm: reprocessing replaces this inspection's detections and "
            "their reviews (images with a verified mask keep theirs).",
        )
    else:
        try:
            reprocessing.reprocess_run(run=run, version=version, by=request.user)
        except reprocessing.ReprocessError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request, f"Reprocessing {run.images.count()} images with {version.name}."
            )
    return redirect(run)


@role_required(INSPECTOR)
def run_progress(request, pk: int):
    run = get_object_or_404(InspectionRun.objects.visible_to(request.user), pk=pk)
    data = selectors.run_progress(run)
    data["archives"] = list(
        run.archives.values("id", "name", "status", "members", "done_members", "error")
    )
    # statuses of the rows the page shows (?ids=1,2,3), so thousands of images stay cheap
    raw = [i for i in request.GET.get("ids", "").split(",") if i]
    if not all(_ID.fullmatch(i) for i in raw):
        return JsonResponse({"error": "ids must be image ids separated by commas"}, status=400)
    ids = [int(i) for i in raw][:IMAGES_PER_PAGE]
    data["images"] = [
        {"id": i.pk, "status": i.status, "error": i.error, "cracks": i.n_cracks}
        for i in selectors.images_with_crack_counts(run).filter(pk__in=ids)
    ]
    return JsonResponse(data)


@role_required(INSPECTOR)
@require_POST
def run_retry_failed(request, pk: int):
    run = get_object_or_404(InspectionRun.objects.visible_to(request.user), pk=pk)
    with transaction.atomic():
        n = services.retry_failed_images(run=run)
    messages.info(
        request, f"{n} failed image(s) queued again." if n else "No failed image can be retried."
    )
    return redirect(run)


@role_required(INSPECTOR)
@require_POST
def run_track(request, pk: int):
    run = get_object_or_404(InspectionRun.objects.visible_to(request.user), pk=pk)
    if run.status != InspectionRun.Status.DONE:
        messages.error(request, "Only a finished inspection can be tracked.")
    else:
        services.retrack_run(run=run)
        messages.info(request, "Tracking queued: cracks are matched to earlier inspections again.")
    return redirect(run)


@role_required(INSPECTOR)
def image_detail(request, pk: int):
    image = get_object_or_404(
        SurveyImage.objects.visible_to(request.user).select_related(
            "run__tunnel", "model_version", "overlay_annotation__created_by"
        ),
        pk=pk,
    )
    siblings = list(image.run.images.order_by(*selectors.BY_CHAINAGE).values_list("pk", flat=True))
    position = siblings.index(image.pk)
    return render(
        request,
        "inspections/image_detail.html",
        {
            "has_pyramid": image.has_pyramid(),
            "image": image,
            "run": image.run,
            "tunnel": image.run.tunnel,
            "cracks": image.cracks.all(),
            "reject_reasons": Crack.RejectReason.choices[1:],
            "crack_boxes": [
                {
                    "id": c.pk,
                    "bbox": c.bbox_px,
                    "label": f"{c.index + 1}"
                    + (f" · {track_label(c.track_id)}" if c.track_id else ""),
                    "severity": c.severity,
                    "rejected": c.review == Crack.Review.REJECTED,
                }
                for c in image.cracks.all()
            ],
            "previous_id": siblings[position - 1] if position > 0 else None,
            "next_id": siblings[position + 1] if position + 1 < len(siblings) else None,
            "annotations": image.annotations.select_related("created_by")[:20],
        },
    )


# a canvas this large (pixels) is the most a browser editor is offered on
CORRECT_MAX_PIXELS = 40_000_000


@role_required(INSPECTOR)
def image_correct(request, pk: int):
    """Correct the crack mask in the browser: brush, eraser, polyline, undo and redo over the
    zoomable photo. Saving stores a new verified version and measures the cracks from it."""
    from crackportal.inspections.models import Annotation
    from crackportal.inspections.uploads import UploadError

    image = get_object_or_404(
        SurveyImage.objects.visible_to(request.user).select_related("run__tunnel"), pk=pk
    )
    if request.method == "POST":
        upload = request.FILES.get("mask")
        if upload is None:
            return JsonResponse({"error": "no mask in the request"}, status=400)
        try:
            annotation, _ = _store_verified(
                image,
                lambda: annotations.upload_annotation(
                    image=image,
                    stream=upload,
                    user=request.user,
                    source=Annotation.Source.CORRECTED,
                ),
            )
        except UploadError as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        return JsonResponse(
            {"version": annotation.version, "crack_pixels": annotation.crack_pixels}
        )
    current = image.annotations.filter(is_current=True).first()
    start = (
        reverse("annotation-mask", args=[current.pk])
        if current
        else (reverse("image-mask", args=[image.pk]) if image.mask else "")
    )
    return render(
        request,
        "inspections/image_correct.html",
        {
            "image": image,
            "run": image.run,
            "tunnel": image.run.tunnel,
            "has_pyramid": image.has_pyramid(),
            "start_mask": start,
            "current": current,
            "too_large": (image.width or 0) * (image.height or 0) > CORRECT_MAX_PIXELS,
        },
    )


def _store_verified(image: SurveyImage, store):
    """(annotation, new) for store(), which saves a verified mask of image. A new current
    version has the image's cracks measured from it once this commits; the same mask again
    measures nothing, so review decisions taken since stay."""
    before = image.annotations.filter(is_current=True).values_list("pk", flat=True).first()
    with transaction.atomic():
        annotation = store()
        new = annotation.pk != before
        if new:
            transaction.on_commit(lambda: _measure_annotation(annotation.pk))
    return annotation, new


def _measure_annotation(annotation_id: int) -> None:
    from crackportal.inspections.tasks import measure_annotation_task

    try:
        measure_annotation_task.delay(annotation_id)
    except Exception:  # broker down: the annotation is stored; re-measuring can be asked again
        log.warning("could not queue measuring annotation %s", annotation_id)


@role_required(INSPECTOR)
def annotation_mask(request, pk: int):
    """A stored version of a verified mask, for whoever may see its image."""
    from crackportal.inspections.models import Annotation

    annotation = get_object_or_404(
        Annotation.objects.filter(image__in=SurveyImage.objects.visible_to(request.user)), pk=pk
    )
    return _serve(annotation.mask, "image/png")


def _serve(field_file, content_type: str | None = None):
    """A stored file, streamed; with MEDIA_DOWNLOADS=presigned (object storage) a redirect to a
    short-lived signed URL instead. Callers have checked the user may see it."""
    if not field_file:
        raise Http404("not available")
    presigned = media.presigned_redirect(field_file)
    if presigned is not None:
        return presigned
    try:
        handle = field_file.open("rb")
    except FileNotFoundError:
        raise Http404("file missing") from None
    return FileResponse(handle, content_type=content_type)


@role_required(MANAGER)
@require_POST
def image_footprint(request, pk: int):
    """Correct where an image lies on the lining (and its scale); its cracks follow."""
    image = get_object_or_404(SurveyImage.objects.visible_to(request.user), pk=pk)
    form = FootprintForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"Footprint not changed — {field}: {' '.join(errors)}")
        return redirect(image)
    try:
        services.correct_footprint(image=image, footprint=Footprint(**form.cleaned_data))
    except UploadError as exc:
        messages.error(request, f"Footprint not changed: {exc}")
    else:
        messages.success(
            request, "Footprint corrected: the cracks moved with it and tracking runs again."
        )
    return redirect(image)


@role_required(INSPECTOR)
@require_POST
def crack_review(request, pk: int):
    """Accept a detected crack, or reject it with a reason (the ✗ button or the keys)."""
    crack = get_object_or_404(Crack.objects.visible_to(request.user), pk=pk)
    decision = "rejected" if "reject" in request.POST else request.POST.get("decision", "")
    try:
        reviews.review_crack(
            crack=crack,
            decision=decision,
            reason=request.POST.get("reason", ""),
            reviewer=request.user,
        )
    except reviews.ReviewError as exc:
        messages.error(request, f"Not recorded: {exc}.")
        return redirect(crack.image)
    # back with the next detection still to review selected: the keys go down the list
    waiting = list(
        crack.image.cracks.filter(review=Crack.Review.UNREVIEWED).values_list("index", "pk")
    )
    following = [pk for index, pk in waiting if index > crack.index] + [pk for _, pk in waiting]
    url = crack.image.get_absolute_url()
    return redirect(f"{url}?crack={following[0]}" if following else url)


@role_required(INSPECTOR)
@require_POST
def image_merge(request, pk: int):
    """Merge the ticked detections of an image into one crack."""
    image = get_object_or_404(SurveyImage.objects.visible_to(request.user), pk=pk)
    ids = [int(i) for i in request.POST.getlist("crack") if i.isdigit()]
    try:
        merged = reviews.merge_cracks(
            cracks=list(image.cracks.filter(pk__in=ids)), reviewer=request.user
        )
    except reviews.ReviewError as exc:
        messages.error(request, f"Not merged: {exc}.")
    else:
        messages.success(request, f"{len(ids)} detections merged into crack {merged.index + 1}.")
    return redirect(image)


@role_required(INSPECTOR)
@require_POST
def crack_split(request, pk: int):
    """Split a detection of several branches into one crack per branch."""
    crack = get_object_or_404(Crack.objects.visible_to(request.user), pk=pk)
    try:
        parts = reviews.split_crack(crack=crack, reviewer=request.user)
    except reviews.ReviewError as exc:
        messages.error(request, f"Not split: {exc}.")
    else:
        messages.success(request, f"Split into {len(parts)} cracks.")
    return redirect(crack.image)


@role_required(INSPECTOR)
@require_POST
def crack_reclass(request, pk: int):
    """Give a detection another class (orientation)."""
    crack = get_object_or_404(Crack.objects.visible_to(request.user), pk=pk)
    try:
        reviews.reclass_crack(
            crack=crack, orientation=request.POST.get("orientation", ""), reviewer=request.user
        )
    except reviews.ReviewError as exc:
        messages.error(request, f"Not re-classed: {exc}.")
    return redirect(crack if request.POST.get("next") == "crack" else crack.image)


@role_required(INSPECTOR)
@require_POST
def image_review(request, pk: int):
    """Accept every detection of the image still waiting for a decision."""
    image = get_object_or_404(SurveyImage.objects.visible_to(request.user), pk=pk)
    n = reviews.accept_the_rest(image=image, reviewer=request.user)
    messages.success(request, f"{n} detection(s) accepted; the image is reviewed.")
    following = reviews.review_progress(image.run)["next_image"]
    return redirect(following or image.run)


@role_required(INSPECTOR)
def image_original(request, pk: int):
    return _serve(get_object_or_404(SurveyImage.objects.visible_to(request.user), pk=pk).file)


@role_required(INSPECTOR)
def image_overlay(request, pk: int):
    return _serve(
        get_object_or_404(SurveyImage.objects.visible_to(request.user), pk=pk).overlay, "image/png"
    )


@role_required(INSPECTOR)
def image_mask(request, pk: int):
    return _serve(
        get_object_or_404(SurveyImage.objects.visible_to(request.user), pk=pk).mask, "image/png"
    )


@role_required(INSPECTOR)
@require_POST
def image_annotate(request, pk: int):
    """Upload a ground-truth mask, or confirm the prediction as ground truth."""
    image = get_object_or_404(SurveyImage.objects.visible_to(request.user), pk=pk)
    try:
        if "confirm" in request.POST:
            annotation, new = _store_verified(
                image, lambda: annotations.confirm_prediction(image=image, user=request.user)
            )
            done = "Prediction confirmed as ground truth"
            measured = "its cracks, as the worker measured them, count as reviewed"
        elif request.FILES.get("mask"):
            annotation, new = _store_verified(
                image,
                lambda: annotations.upload_annotation(
                    image=image, stream=request.FILES["mask"], user=request.user
                ),
            )
            done = "Ground-truth mask stored"
            measured = "the image's cracks are measured again from it and count as reviewed"
        else:
            messages.error(request, "Choose a mask file, or confirm the prediction.")
            return redirect(image)
        if new:
            messages.success(
                request,
                f"{done} (verified version {annotation.version}): {measured}; "
                "retraining can use it.",
            )
        else:
            messages.info(
                request, f"That mask is already the current verified version {annotation.version}."
            )
    except UploadError as exc:
        messages.error(request, f"Annotation refused: {exc}")
    return redirect(image)


@role_required(INSPECTOR)
def tunnel_map(request, code: str):
    tunnel = get_object_or_404(Tunnel.objects.visible_to(request.user), code=code)
    runs = list(tunnel.runs.all())
    run = next((r for r in runs if str(r.pk) == request.GET.get("run")), runs[0] if runs else None)
    return render(
        request,
        "inspections/tunnel_map.html",
        {
            "tunnel": tunnel,
            "runs": runs,
            "run": run,
            "severities": list(severity_colours()),
            "severity_colours": severity_colours(),
            "orientations": Crack.Orientation.values,
            "condition_legend": condition.legend(),
        },
    )


@role_required(INSPECTOR)
def tunnel_map_data(request, code: str):
    run = _map_run(request, code)
    if isinstance(run, JsonResponse):
        return run
    try:
        filters = maps.MapFilters.from_query(request.GET)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(maps.map_data(run, filters))


@role_required(INSPECTOR)
def tunnel_map_rings(request, code: str):
    """Rings, segments, zones and condition states of one inspection for the map (its own
    request: the cracks draw first, the band follows); null when the tunnel has no rings."""
    run = _map_run(request, code)
    if isinstance(run, JsonResponse):
        return run
    return JsonResponse({"rings": condition.compact(condition.ring_conditions(run))})


def _map_run(request, code: str):
    """The inspection a map request names (?run=ID) among the tunnel's, or a 400 answer."""
    tunnel = get_object_or_404(Tunnel.objects.visible_to(request.user), code=code)
    run_id = request.GET.get("run", "")
    if not _ID.fullmatch(run_id):
        return JsonResponse(
            {"error": f"run must be an inspection id, not {run_id[:40]!r}"}, status=400
        )
    return get_object_or_404(tunnel.runs.select_related("tunnel"), pk=int(run_id))


@role_required(INSPECTOR)
def crack_detail(request, pk: int):
    crack = get_object_or_404(
        Crack.objects.visible_to(request.user).select_related("image__run__tunnel", "track"),
        pk=pk,
    )
    history = selectors.track_history(crack)
    return render(
        request,
        "inspections/crack_detail.html",
        {
            "crack": crack,
            "image": crack.image,
            "run": crack.image.run,
            "tunnel": crack.image.run.tunnel,
            "history": history,
            "growth": growth_per_year(history),
            "orientations": Crack.Orientation.choices,
            "edits": crack.reviews.select_related("reviewer")[:20],
        },
    )


@role_required(INSPECTOR)
def image_thumbnail(request, pk: int):
    """A small JPEG of a survey image for tables (made once, then kept beside the original)."""
    image = get_object_or_404(SurveyImage.objects.visible_to(request.user), pk=pk)
    try:
        data = thumbnails.image_thumbnail(image)
    except (FileNotFoundError, ValueError):
        raise Http404("no photo for this image") from None
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response


@role_required(INSPECTOR)
def crack_thumbnail(request, pk: int):
    crack = get_object_or_404(
        Crack.objects.visible_to(request.user).select_related("image"),
        pk=pk,
    )
    try:
        data = thumbnails.crack_thumbnail(crack)
    except FileNotFoundError:
        raise Http404("image file missing") from None
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@role_required(INSPECTOR)
def image_tile(request, pk: int, name: str, path: str = ""):
    """Deep-zoom descriptor or tile of a large image (photo or overlay). The overlay's name may
    carry the image's overlay_stamp ("overlay-<stamp>"): a new one after every change, so the
    day a browser keeps tiles never shows an overlay from before."""
    image = get_object_or_404(SurveyImage.objects.visible_to(request.user), pk=pk)
    if re.fullmatch(r"overlay-[0-9-]+", name):
        name = "overlay"
    if name not in ("photo", "overlay"):
        raise Http404("no such pyramid")
    folder = image.pyramid_prefix
    if not path:
        target = f"{folder}/{name}.dzi"
        content_type = "application/xml"
    else:
        level, _, tile = path.partition("/")
        if not (level.isdigit() and re.fullmatch(r"\d+_\d+\.(jpg|png)", tile)):
            raise Http404("no such tile")
        target = f"{folder}/{name}_files/{level}/{tile}"
        content_type = "image/png" if tile.endswith(".png") else "image/jpeg"
    try:
        handle = default_storage.open(target, "rb")
    except OSError:
        raise Http404("no such tile") from None
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, max-age=86400"
    return response
