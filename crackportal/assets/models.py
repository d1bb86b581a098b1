from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse

from crackportal.accounts.roles import INSPECTOR, MANAGER, has_role


class TunnelQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Tunnels a user may see: all for managers and admins, assigned ones for inspectors."""
        if has_role(user, MANAGER):
            return self.all()
        if has_role(user, INSPECTOR):
            return self.filter(members=user)
        return self.none()


class TunnelScopedQuerySet(models.QuerySet):
    """Rows that belong to a tunnel; `visible_to` is the one access rule for pages and the API.

    Subclasses name the lookup from their model to the tunnel in `tunnel_path`.
    """

    tunnel_path = "tunnel"

    def visible_to(self, user):
        """The rows of tunnels the user may see (nothing for a user without a role)."""
        if has_role(user, MANAGER):
            return self.all()
        return self.filter(**{f"{self.tunnel_path}__in": Tunnel.objects.visible_to(user)})


class Tunnel(models.Model):
    """A tunnel; its lining unrolls to a map of length_m (chainage) by circumference_m (arc)."""

    code = models.SlugField(
        max_length=40, unique=True, help_text="Short unique code, e.g. T-NORTH-01"
    )
    name = models.CharField(max_length=200)
    length_m = models.FloatField(validators=[MinValueValidator(0.0)])
    circumference_m = models.FloatField(
        validators=[MinValueValidator(0.01, "The lining's circumference must be more than 0 m.")],
        help_text="Lining arc length: the height of the unrolled map",
    )
    notes = models.TextField(blank=True)
    require_review = models.BooleanField(
        default=False,
        help_text="Reports of an inspection are issued only when every detection was reviewed",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="tunnels",
        help_text="Inspectors assigned to this tunnel (managers and admins see every tunnel)",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TunnelQuerySet.as_manager()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    def get_absolute_url(self) -> str:
        return reverse("tunnel-detail", args=[self.code])
