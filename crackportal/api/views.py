"""REST API (Django REST framework): thin viewsets over the same services and selectors as the pages."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from crackportal.api import serializers as s
from crackportal.api.authentication import token_expired
from crackportal.api.parsers import SafeJSONParser
from crackportal.api.permissions import InspectorReadsManagerWrites, IsAdmin, IsInspector, IsManager
from crackportal.assets.models import Tunnel
from crackportal.inspections import selectors, services
from crackportal.inspections.maps import MapFilters, filter_cracks
from crackportal.inspections.models import Crack, CrackTrack, InspectionRun, SurveyImage
from crackportal.inspections.uploads import IncomingFile, UploadError
from crackportal.modelops import services as modelops
from crackportal.modelops import training_services
from crackportal.modelops.models import ModelVersion, TrainingRun
from crackportal.reports import services as reports
from crackportal.reports.models import Report
from crackportal.reports.views import download_response

MAX_ID = 2**31 - 1


def _int_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: f"must be an integer, not {raw!r}"}) from None
    if not 0 <= value <= MAX_ID:
        raise ValidationError({name: f"must be between 0 and {MAX_ID}"})
    return value


def _placement_params(data) -> dict:
    """start_chainage_m and direction of an upload, checked (400 on a bad value)."""
    body = s.UploadSerializer(
        data={
            "start_chainage_m": data.get("start_chainage_m") or None,
            "direction": data.get("direction") or "increasing",
        },
        partial=True,
    )
    body.is_valid(raise_exception=True)
    return {
        "start_chainage_m": body.validated_data.get("start_chainage_m"),
        "direction": body.validated_data.get("direction", "increasing"),
    }


class IdViewSetMixin:
    """Integer ids only in URLs, and small enough for every database (else 404)."""

    lookup_value_regex = r"[0-9]{1,9}"


class TunnelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Tunnels you may see; managers add and edit them."""

    serializer_class = s.TunnelSerializer
    permission_classes = [InspectorReadsManagerWrites]
    lookup_field = "code"

    def get_queryset(self):
        return Tunnel.objects.visible_to(self.request.user).order_by("code")


class RunViewSet(
    IdViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Inspection runs; filter with ?tunnel=CODE. Upload images to a run with POST .../images/."""

    serializer_class = s.RunSerializer
    permission_classes = [IsInspector]

    def get_queryset(self):
        runs = InspectionRun.objects.visible_to(self.request.user)
        if tunnel := self.request.query_params.get("tunnel"):
            runs = runs.filter(tunnel__code=tunnel)
        return runs.select_related("tunnel", "model_version").order_by("-date", "-id")

    @extend_schema(parameters=[OpenApiParameter("tunnel", str, description="tunnel code")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        tunnel = serializer.validated_data["tunnel"]  # one of the user's (VisibleTunnelField)
        run = services.create_run(
            tunnel=tunnel,
            date=serializer.validated_data["date"],
            label=serializer.validated_data.get("label", ""),
            created_by=self.request.user,
        )
        serializer.instance = run

    @extend_schema(
        request={"multipart/form-data": s.UploadSerializer},
        responses={201: s.UploadResultSerializer, 400: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def images(self, request, pk=None):
        """Upload survey images (several files and/or .zip archives, optional CSV manifest)."""
        run = self.get_object()
        files = request.FILES.getlist("files")
        if not files:
            raise ValidationError(
                {"files": "attach one or more images or .zip archives as 'files'"}
            )
        manifest = request.FILES.get("manifest")
        try:
            result = services.upload_survey(
                run=run,
                files=[IncomingFile.from_upload(f) for f in files],
                manifest=IncomingFile.from_upload(manifest) if manifest else None,
                **_placement_params(request.data),
            )
        except UploadError as exc:
            raise ValidationError({"manifest": f"rejected, nothing was stored: {exc}"}) from exc
        body = {
            "accepted": result.accepted,
            "failed": [{"file": name, "reason": why} for name, why in result.failed],
            "duplicates": result.duplicates,
            "warnings": result.warnings,
            "unplaced": result.unplaced,
            "unused_manifest_rows": result.unused_manifest_rows,
            "unpacking": result.deferred,
        }
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def progress(self, request, pk=None):
        """Image counts by status, percent done and crack count."""
        return Response(selectors.run_progress(self.get_object()))

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Queue the run's failed images again."""
        return Response({"queued": services.retry_failed_images(run=self.get_object())})

    @extend_schema(request=s.ReportRequestSerializer, responses={202: s.ReportSerializer})
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[IsManager],
        parser_classes=[SafeJSONParser, FormParser],
    )
    def reports(self, request, pk=None):
        """Request a PDF or XLSX report (built by a worker; poll /api/reports/ID/)."""
        body = s.ReportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            report = reports.request_report(
                run=self.get_object(), kind=body.validated_data["kind"], user=request.user
            )
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(s.ReportSerializer(report, context={"request": request}).data, status=202)


class ImageViewSet(IdViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Survey images; filter with ?run=ID and ?status=."""

    serializer_class = s.ImageSerializer
    permission_classes = [IsInspector]

    def get_queryset(self):
        images = SurveyImage.objects.visible_to(self.request.user)
        if (run := _int_param(self.request, "run")) is not None:
            images = images.filter(run_id=run)
        if state := self.request.query_params.get("status"):
            images = images.filter(status=state)
        n_cracks = Count("cracks", filter=selectors.COUNTED_CRACKS)  # as the run page counts
        return images.annotate(n_cracks=n_cracks).order_by("id")

    @extend_schema(
        parameters=[
            OpenApiParameter("run", int),
            OpenApiParameter("status", str, enum=SurveyImage.Status.values),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


CRACK_FILTERS = [
    OpenApiParameter("run", int, description="inspection run id"),
    OpenApiParameter("tunnel", str, description="tunnel code"),
    OpenApiParameter("severity", str, description="comma-separated severity classes"),
    OpenApiParameter("orientation", str, description="comma-separated orientations"),
    OpenApiParameter("min_width_mm", float),
    OpenApiParameter("chainage_from_m", float),
    OpenApiParameter("chainage_to_m", float),
]


class CrackViewSet(IdViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Cracks with geometry and measurements; filter by run, tunnel, severity, orientation, width, chainage."""

    serializer_class = s.CrackSerializer
    permission_classes = [IsInspector]

    def get_queryset(self):
        params = self.request.query_params
        try:
            filters = MapFilters.from_query(params)
        except ValueError as exc:
            raise ValidationError({"filter": str(exc)}) from exc
        cracks = Crack.objects.visible_to(self.request.user)
        if self.action == "list":
            run = _int_param(self.request, "run")
            if run is not None:
                cracks = cracks.filter(image__run_id=run)
            if tunnel := params.get("tunnel"):
                cracks = cracks.filter(image__run__tunnel__code=tunnel)
            cracks = filter_cracks(cracks, filters)
        return cracks.select_related("image").order_by("id")

    @extend_schema(parameters=CRACK_FILTERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class TrackViewSet(IdViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Crack tracks across inspections with their history and growth; filter with ?tunnel=CODE."""

    serializer_class = s.TrackSerializer
    permission_classes = [IsInspector]

    def get_queryset(self):
        tracks = CrackTrack.objects.visible_to(self.request.user)
        if tunnel := self.request.query_params.get("tunnel"):
            tracks = tracks.filter(tunnel__code=tunnel)
        return tracks.order_by("id")

    @extend_schema(parameters=[OpenApiParameter("tunnel", str, description="tunnel code")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class ReportViewSet(IdViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Reports (managers): status and progress; download when done."""

    serializer_class = s.ReportSerializer
    permission_classes = [IsManager]

    def get_queryset(self):
        return (
            Report.objects.visible_to(self.request.user)
            .select_related("approved_by")
            .order_by("-id")
        )

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: OpenApiTypes.OBJECT}
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        return download_response(self.get_object())

    @extend_schema(request=None, responses={202: s.ReportSerializer, 409: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve a finished PDF report: stamped by a worker, then locked (a change needs a
        new version); 409 when it is not finished or already approved."""
        try:
            report = reports.approve_report(report=self.get_object(), user=request.user)
        except reports.ApprovalError as exc:
            return Response({"detail": str(exc)}, status=409)
        return Response(s.ReportSerializer(report, context={"request": request}).data, status=202)


class ModelVersionViewSet(IdViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Model versions (admins); activate one to use it for new images."""

    serializer_class = s.ModelVersionSerializer
    permission_classes = [IsAdmin]
    queryset = ModelVersion.objects.order_by("-created_at")

    @extend_schema(
        request=inline_serializer("Activation", {"reason": serializers.CharField(required=False)}),
        responses={200: s.ModelVersionSerializer},
    )
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        """Make this version active; one worse than the active model needs a "reason"."""
        reason = request.data.get("reason", "") if hasattr(request.data, "get") else ""
        try:
            version = modelops.activate_model_version(
                version=self.get_object(), by=request.user, reason=str(reason or "")
            )
        except modelops.ActivationRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(s.ModelVersionSerializer(version).data)


class TrainingRunViewSet(
    IdViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Training runs (admins): start one, watch its epochs, cancel it."""

    serializer_class = s.TrainingRunSerializer
    permission_classes = [IsAdmin]
    queryset = TrainingRun.objects.order_by("-created_at")

    @extend_schema(request=s.TrainingRequestSerializer, responses={201: s.TrainingRunSerializer})
    def create(self, request, *args, **kwargs):
        body = s.TrainingRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            run = training_services.start_training_run(
                **body.validated_data, created_by=request.user
            )
        except training_services.TrainingError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(s.TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.TrainingRunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        training_services.request_cancel(run=run)
        run.refresh_from_db()
        return Response(s.TrainingRunSerializer(run).data)


class TokenView(ObtainAuthToken):
    """POST username + password → {"token": ..., "expires": ...}; locked out (429) after
    repeated wrong passwords. Tokens expire (API_TOKEN_TTL_HOURS) and are revoked by a
    password change or a sign-out."""

    def post(self, request, *args, **kwargs):
        from axes.handlers.proxy import AxesProxyHandler

        data = request.data if hasattr(request.data, "get") else {}
        if len(str(data.get("username", ""))) > 150:  # no such user; axes' log column is 255
            return Response(
                {"username": ["Ensure this field has no more than 150 characters."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        username = str(data.get("username", ""))[:150]
        # a NUL byte cannot reach PostgreSQL; the serializer below refuses such a name (400)
        credentials = {"username": username.replace("\x00", "")}
        if AxesProxyHandler.is_locked(request._request, credentials):
            return Response(
                {"detail": "Too many failed sign-ins for this user; try again later."},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        token = Token.objects.filter(user=user).first()
        if token is not None and token_expired(token):
            token.delete()  # an expired token is replaced, never handed out again
            token = None
        token = token or Token.objects.create(user=user)
        expires = token.created + timedelta(hours=settings.API_TOKEN_TTL_HOURS)
        return Response({"token": token.key, "expires": expires.isoformat()})
