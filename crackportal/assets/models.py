from django.conf import settings
from django.core.exceptions import ValidationError
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


def validate_lining_zones(text: str) -> None:
    """Zones typed as "name, arc from, arc to" lines (condition.parse_zones says what is wrong)."""
    from crackportal.inspections.condition import parse_zones

    try:
        parse_zones(text)
    except ValueError as exc:
        raise ValidationError(f"Lining zones, {exc}.") from None


class Tunnel(models.Model):
    """A tunnel; its lining unrolls to a map of length_m (chainage) by circumference_m (arc)."""

    # what a manager edits, on the form and through the API
    EDITABLE = [
        "code",
        "name",
        "length_m",
        "circumference_m",
        "ring_length_m",
        "first_ring_chainage_m",
        "segments_per_ring",
        "lining_zones",
        "notes",
    ]

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
    ring_length_m = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.1, "A ring is at least 0.1 m long.")],
        help_text="Length of one lining ring along the axis (m); blank: no ring grid or condition",
    )
    first_ring_chainage_m = models.FloatField(
        default=0.0, help_text="Chainage (m) where ring 1 begins; rings are numbered from there"
    )
    segments_per_ring = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Segments around one ring (equal arcs from arc 0); blank: rings are rated whole",
    )
    lining_zones = models.TextField(
        blank=True,
        validators=[validate_lining_zones],
        help_text=(
            'One zone per line: name, arc from (m), arc to (m), e.g. "crown, 6.4, 9.6". Blank: '
            "invert, walls, shoulders and crown from the circumference, arc 0 at the invert's centre"
        ),
    )
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
