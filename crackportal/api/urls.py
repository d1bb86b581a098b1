from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import DefaultRouter

from crackportal.api import views

router = DefaultRouter()
router.register("tunnels", views.TunnelViewSet, basename="api-tunnel")
router.register("runs", views.RunViewSet, basename="api-run")
router.register("images", views.ImageViewSet, basename="api-image")
router.register("cracks", views.CrackViewSet, basename="api-crack")
router.register("tracks", views.TrackViewSet, basename="api-track")
router.register("reports", views.ReportViewSet, basename="api-report")
router.register("models", views.ModelVersionViewSet, basename="api-model")
router.register("training-runs", views.TrainingRunViewSet, basename="api-training")

urlpatterns = [
    path("token/", views.TokenView.as_view(), name="api-token"),
    # the schema and its docs are for signed-in users (any role), like the API itself
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]),
        name="api-schema",
    ),
    path(
        "docs/",
        SpectacularRedocView.as_view(url_name="api-schema", permission_classes=[IsAuthenticated]),
        name="api-docs",
    ),
    path("", include(router.urls)),
]
