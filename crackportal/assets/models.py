from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse


class Tunnel(models.Model):
    """A tunnel; its lining unrolls to a map of length_m (chainage) by circumference_m (arc)."""

    code = models.SlugField(
        max_length=40, unique=True, help_text="Short unique code, e.g. T-NORTH-01"
    )
    name = models.CharField(max_length=200)
    length_m = models.FloatField(validators=[MinValueValidator(0.0)])
    circumference_m = models.FloatField(
        validators=[MinValueValidator(0.0)],
        help_text="Lining arc length: the height of the unrolled map",
    )
    notes = models.TextField(blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="tunnels",
        help_text="Inspectors assigned to this tunnel (managers and admins see every tunnel)",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    def get_absolute_url(self) -> str:
        return reverse("tunnel-detail", args=[self.code])
