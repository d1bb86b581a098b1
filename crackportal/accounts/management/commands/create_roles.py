"""Create the inspector, manager and admin groups, and optionally one demo user of each.

python manage.py create_roles [--demo-users] [--password PASSWORD]
"""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from crackportal.accounts.roles import ADMIN, ROLES


class Command(BaseCommand):
    help = "Create the role groups (and demo users with --demo-users)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--demo-users", action="store_true", help="create inspector/manager/admin users"
        )
        parser.add_argument(
            "--password", help="password for the demo users (default: random, printed)"
        )

    def handle(self, *args, demo_users, password, **options):
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
        self.stdout.write(f"Role groups: {', '.join(ROLES)}")
        if not demo_users:
            return
        from crackportal.assets.models import Tunnel

        user_model = get_user_model()
        for role in ROLES:
            username = f"demo-{role}"
            user, created = user_model.objects.get_or_create(username=username)
            if created or password:
                secret = password or secrets.token_urlsafe(9)
                user.set_password(secret)
                user.is_staff = role == ADMIN
                user.save()
                self.stdout.write(self.style.SUCCESS(f"{role:>9}: {username} / {secret}"))
            else:
                self.stdout.write(f"{role:>9}: {username} (exists; password unchanged)")
            user.groups.add(groups[role])
            for tunnel in Tunnel.objects.all():
                tunnel.members.add(user)
