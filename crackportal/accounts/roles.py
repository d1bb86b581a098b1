"""Roles as groups: inspector ⊂ manager ⊂ admin. Views check them; a refusal is a 403 page.

- inspector: sees the tunnels they are assigned to, uploads surveys, annotates images;
- manager: also sees every tunnel, adds tunnels and exports reports;
- admin: also manages users, training runs and model versions (superusers are admins).
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

INSPECTOR, MANAGER, ADMIN = "inspector", "manager", "admin"
ROLES = (INSPECTOR, MANAGER, ADMIN)
_RANK = {INSPECTOR: 1, MANAGER: 2, ADMIN: 3}


def role_of(user) -> str | None:
    """The highest role a user holds, or None."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    cached = getattr(user, "_crackportal_role", "unset")
    if cached != "unset":
        return cached
    names = set(user.groups.values_list("name", flat=True)) & set(ROLES)
    role = max(names, key=_RANK.get) if names else None
    user._crackportal_role = role
    return role


def has_role(user, role: str) -> bool:
    """True when the user's role is `role` or above."""
    held = role_of(user)
    return held is not None and _RANK[held] >= _RANK[role]


def role_required(role: str):
    """View decorator: anonymous users go to the login page, users below `role` get 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, role):
                raise PermissionDenied(f"This page needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class RoleBackend:
    """Authorisation by role: the admin role may use the Django admin (every model permission)."""

    def authenticate(self, request, **credentials):
        return None  # authorisation only; signing in is ModelBackend's

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return has_role(user_obj, ADMIN)

    def has_module_perms(self, user_obj, app_label) -> bool:
        return has_role(user_obj, ADMIN)


def admin_site_permission(request) -> bool:
    """The Django admin is open to active staff and to every user holding the admin role."""
    user = request.user
    return user.is_active and (user.is_staff or has_role(user, ADMIN))
