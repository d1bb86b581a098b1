from crackportal.accounts.roles import ADMIN, MANAGER, has_role, role_of


def role(request):
    """The user's role for templates: navigation shows only what the role may open."""
    user = request.user
    return {
        "role": role_of(user),
        "is_manager": has_role(user, MANAGER),
        "is_admin": has_role(user, ADMIN),
    }
