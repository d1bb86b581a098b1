"""Reads for tunnel pages: the dashboard and a tunnel's inspections."""

from django.db.models import Count, Q

from crackportal.inspections.models import Crack, SurveyImage
from crackportal.inspections.selectors import growing_cracks
from crackportal.inspections.severity import severity_classes


def runs_for_tunnel(tunnel):
    return tunnel.runs.annotate(
        n_images=Count("images", distinct=True),
        n_done=Count("images", filter=Q(images__status=SurveyImage.Status.DONE), distinct=True),
        n_failed=Count("images", filter=Q(images__status=SurveyImage.Status.FAILED), distinct=True),
    )


def tunnel_dashboard(tunnels) -> list[dict]:
    """Per tunnel: latest inspection, crack counts by severity there, growing cracks, backlog."""
    names = [name for _, name in severity_classes()]
    rows = []
    for tunnel in tunnels:
        latest = tunnel.runs.order_by("-date", "-created_at").first()
        by_severity = (
            dict(
                Crack.objects.counted()
                .filter(image__run=latest)
                .values_list("severity")
                .annotate(n=Count("id"))
            )
            if latest
            else {}
        )
        backlog = SurveyImage.objects.filter(
            run__tunnel=tunnel, status__in=["pending", "queued", "processing"]
        ).count()
        rows.append(
            {
                "tunnel": tunnel,
                "latest": latest,
                "severity_counts": [(name, by_severity.get(name, 0)) for name in names],
                "cracks": sum(by_severity.values()),
                "growing": growing_cracks(latest).count() if latest else 0,
                "backlog": backlog,
            }
        )
    return rows


def assignable_inspectors(tunnel):
    """Users with the inspector role (only: managers see every tunnel) not yet on the tunnel."""
    from django.contrib.auth import get_user_model

    from crackportal.accounts.roles import INSPECTOR

    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name=INSPECTOR)
        .exclude(tunnels=tunnel)
        .order_by("username")
        .distinct()
    )
