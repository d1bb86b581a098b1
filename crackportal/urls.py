from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from crackportal.assets import views as assets
from crackportal.health import health
from crackportal.inspections import views as inspections
from crackportal.modelops import views as modelops
from crackportal.reports import views as reports

urlpatterns = [
    path("health/", health, name="health"),
    path("", assets.tunnel_list, name="tunnel-list"),
    path("tunnels/new/", assets.tunnel_create, name="tunnel-create"),
    path("tunnels/<slug:code>/", assets.tunnel_detail, name="tunnel-detail"),
    path("tunnels/<slug:code>/edit/", assets.tunnel_edit, name="tunnel-edit"),
    path("tunnels/<slug:code>/members/", assets.tunnel_members, name="tunnel-members"),
    path("tunnels/<slug:code>/map/", inspections.tunnel_map, name="tunnel-map"),
    path("tunnels/<slug:code>/map.json", inspections.tunnel_map_data, name="tunnel-map-data"),
    path("tunnels/<slug:code>/rings.json", inspections.tunnel_map_rings, name="tunnel-map-rings"),
    path("cracks/<int:pk>/", inspections.crack_detail, name="crack-detail"),
    path("cracks/<int:pk>/thumb.jpg", inspections.crack_thumbnail, name="crack-thumbnail"),
    path("cracks/<int:pk>/review/", inspections.crack_review, name="crack-review"),
    path("cracks/<int:pk>/split/", inspections.crack_split, name="crack-split"),
    path("cracks/<int:pk>/reclass/", inspections.crack_reclass, name="crack-reclass"),
    path("images/<int:pk>/merge/", inspections.image_merge, name="image-merge"),
    path("tunnels/<slug:code>/runs/new/", inspections.run_create, name="run-create"),
    path("runs/<int:pk>/", inspections.run_detail, name="run-detail"),
    path("runs/<int:pk>/progress.json", inspections.run_progress, name="run-progress"),
    path("runs/<int:pk>/retry/", inspections.run_retry_failed, name="run-retry"),
    path("runs/<int:pk>/track/", inspections.run_track, name="run-track"),
    path("runs/<int:pk>/reprocess/", inspections.run_reprocess, name="run-reprocess"),
    path("runs/<int:pk>/reports/", reports.report_request, name="report-request"),
    path("runs/<int:pk>/cracks.csv", reports.run_export_csv, name="run-export-csv"),
    path("runs/<int:pk>/cracks.geojson", reports.run_export_geojson, name="run-export-geojson"),
    path("runs/<int:pk>/cracks.dxf", reports.run_export_dxf, name="run-export-dxf"),
    path("reports/<int:pk>/status.json", reports.report_status, name="report-status"),
    path("reports/<int:pk>/download/", reports.report_download, name="report-download"),
    path("reports/<int:pk>/approve/", reports.report_approve, name="report-approve"),
    path("images/<int:pk>/", inspections.image_detail, name="image-detail"),
    path("images/<int:pk>/original", inspections.image_original, name="image-original"),
    path("images/<int:pk>/thumb.jpg", inspections.image_thumbnail, name="image-thumbnail"),
    path("images/<int:pk>/overlay.png", inspections.image_overlay, name="image-overlay"),
    path("images/<int:pk>/mask.png", inspections.image_mask, name="image-mask"),
    path("images/<int:pk>/dz/<slug:name>.dzi", inspections.image_tile, name="image-dzi"),
    path(
        "images/<int:pk>/dz/<slug:name>_files/<path:path>",
        inspections.image_tile,
        name="image-tile",
    ),
    path("images/<int:pk>/annotate/", inspections.image_annotate, name="image-annotate"),
    path("images/<int:pk>/correct/", inspections.image_correct, name="image-correct"),
    path("annotations/<int:pk>/mask.png", inspections.annotation_mask, name="annotation-mask"),
    path("images/<int:pk>/footprint/", inspections.image_footprint, name="image-footprint"),
    path("images/<int:pk>/review/", inspections.image_review, name="image-review"),
    path("models/", modelops.model_list, name="model-list"),
    path("models/<int:pk>/activate/", modelops.model_activate, name="model-activate"),
    path("training/", modelops.training_list, name="training-list"),
    path("training/adapt/", modelops.training_adapt, name="training-adapt"),
    path("training/<int:pk>/", modelops.training_detail, name="training-detail"),
    path("training/<int:pk>/status.json", modelops.training_status, name="training-status"),
    path("training/<int:pk>/cancel/", modelops.training_cancel, name="training-cancel"),
    path("training/<int:pk>/retry/", modelops.training_retry, name="training-retry"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("crackportal.api.urls")),
]
