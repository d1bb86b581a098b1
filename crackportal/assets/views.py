"""Tunnel pages: inspectors see their assigned tunnels, managers and admins see all."""

from django.shortcuts import get_object_or_404, redirect, render

from crackportal.accounts.roles import INSPECTOR, MANAGER, role_required
from crackportal.assets.forms import TunnelForm
from crackportal.assets.models import Tunnel
from crackportal.assets.selectors import runs_for_tunnel, tunnel_dashboard


@role_required(INSPECTOR)
def tunnel_list(request):
    rows = tunnel_dashboard(Tunnel.objects.visible_to(request.user).order_by("code"))
    return render(request, "assets/tunnel_list.html", {"rows": rows})


@role_required(INSPECTOR)
def tunnel_detail(request, code: str):
    tunnel = get_object_or_404(Tunnel.objects.visible_to(request.user), code=code)
    return render(
        request, "assets/tunnel_detail.html", {"tunnel": tunnel, "runs": runs_for_tunnel(tunnel)}
    )


@role_required(MANAGER)
def tunnel_create(request):
    form = TunnelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        tunnel = form.save()
        tunnel.members.add(request.user)
        return redirect(tunnel)
    return render(request, "assets/tunnel_form.html", {"form": form})
