"""The demo seed: a tunnel, an admin login and two queued surveys of synthetic images."""

from django.core.management import call_command

from crackportal.assets.models import Tunnel
from crackportal.modelops.models import ModelVersion


def test_seed_demo_creates_tunnel_login_and_survey(db, django_user_model, capsys):
    call_command("seed_demo", "--images", "2", "--password", "demo-pass-123")
    out = capsys.readouterr().out
    assert "demo / demo-pass-123" in out
    tunnel = Tunnel.objects.get(code="DEMO-01")
    user = django_user_model.objects.get(username="demo")
    assert user.groups.filter(name="admin").exists() and tunnel.members.filter(pk=user.pk).exists()
    previous, current = tunnel.runs.order_by("date")
    assert (current.date - previous.date).days in (365, 366)
    for run in (previous, current):
        assert run.images.count() == 2
        assert set(run.images.values_list("status", flat=True)) == {"pending"}
        assert run.images.order_by("id").first().chainage_start_m == 10.0
    assert ModelVersion.objects.get(is_active=True).name == "default"
    call_command("seed_demo")  # running it again adds nothing
    assert tunnel.runs.count() == 2
