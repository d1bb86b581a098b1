"""Tunnel pages (login required)."""

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max
from django.shortcuts import get_object_or_404, redirect, render

from crackportal.assets.models import Tunnel
from crackportal.inspections.forms import TunnelForm
from crackportal.inspections.selectors import runs_for_tunnel


@login_required
def tunnel_list(request):
    tunnels = Tunnel.objects.annotate(n_runs=Count("runs"), last_inspection=Max("runs__date"))
    return render(request, "assets/tunnel_list.html", {"tunnels": tunnels})


@login_required
def tunnel_detail(request, code: str):
    tunnel = get_object_or_404(Tunnel, code=code)
    return render(
        request, "assets/tunnel_detail.html", {"tunnel": tunnel, "runs": runs_for_tunnel(tunnel)}
    )


@login_required
def tunnel_create(request):
    form = TunnelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        return redirect(form.save())
    return render(request, "assets/tunnel_form.html", {"form": form})
