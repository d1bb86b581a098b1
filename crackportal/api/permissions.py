"""Role checks for the API: the same inspector ⊂ manager ⊂ admin ladder as the pages."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from crackportal.accounts.roles import ADMIN, INSPECTOR, MANAGER, has_role


def role_permission(role: str, write_role: str | None = None):
    """Permission class: reading needs `role`, writing needs `write_role` (default: the same)."""

    class HasRole(BasePermission):
        message = f"This needs the {write_role or role} role."

        def has_permission(self, request, view):
            needed = role if request.method in SAFE_METHODS else (write_role or role)
            self.message = f"This needs the {needed} role."
            return has_role(request.user, needed)

    HasRole.__name__ = f"Has{role.title()}Role"
    return HasRole


IsInspector = role_permission(INSPECTOR)
IsManager = role_permission(MANAGER)
IsAdmin = role_permission(ADMIN)
InspectorReadsManagerWrites = role_permission(INSPECTOR, MANAGER)
