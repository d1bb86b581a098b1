"""Tunnel pages: inspectors see their assigned tunnels, managers and admins see all."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from crackportal.accounts.roles import INSPECTOR, MANAGER, has_role, role_required
from crackportal.assets import selectors
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
    context = {"tunnel": tunnel, "runs": runs_for_tunnel(tunnel)}
    if has_role(request.user, MANAGER):
        context["members"] = tunnel.members.order_by("username")
        context["candidates"] = selectors.assignable_inspectors(tunnel)
    return render(request, "assets/tunnel_detail.html", context)


@role_required(MANAGER)
def tunnel_edit(request, code: str):
    tunnel = get_object_or_404(Tunnel, code=code)
    form = TunnelForm(request.POST or None, instance=tunnel)
    if request.method == "POST" and form.is_valid():
        tunnel = form.save()
        messages.success(request, "Tunnel saved.")
        return redirect(tunnel)
    return render(request, "assets/tunnel_form.html", {"form": form, "tunnel": tunnel})


@role_required(MANAGER)
@require_POST
def tunnel_members(request, code: str):
    """Assign an inspector to the tunnel, or take one off it."""
    tunnel = get_object_or_404(Tunnel, code=code)
    user = get_object_or_404(get_user_model(), pk=request.POST.get("user") or 0)
    if request.POST.get("action") == "remove":
        tunnel.members.remove(user)
        messages.success(request, f"{user.username} no longer sees {tunnel.code}.")
    else:
        if not has_role(user, INSPECTOR):
            messages.error(request, f"{user.username} has no role; give them one first.")
        else:
            tunnel.members.add(user)
            messages.success(request, f"{user.username} now sees {tunnel.code}.")
    return redirect(tunnel)


@role_required(MANAGER)
def tunnel_create(request):
    form = TunnelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        tunnel = form.save()
        tunnel.members.add(request.user)
        return redirect(tunnel)
    return render(request, "assets/tunnel_form.html", {"form": form})
