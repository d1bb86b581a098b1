from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q

from inference.config import fingerprint

UNRECORDED = "unrecorded"  # a shipped default registered before fingerprints were kept


class ModelFilesChanged(RuntimeError):
    """A model version's folder no longer holds the files it was registered with."""


class ModelVersion(models.Model):
    """A model-version folder (config, weights, card) the workers can load; one is active."""

    name = models.CharField(max_length=100, unique=True)
    path = models.CharField(max_length=500, help_text="Folder, absolute or relative to MODEL_DIR")
    architecture = models.CharField(max_length=50)
    encoder = models.CharField(max_length=50)
    stored_prefix = models.CharField(
        max_length=300,
        blank=True,
        help_text="The folder's copy in media storage (models/<name>), for workers on other hosts",
    )
    # inference.config.fingerprint of the folder when registered: the files a worker loads
    # must still be these (a newer shipped default overwrites models/default). Empty: not
    # recorded, not checked; UNRECORDED: registered before fingerprints, so never matched
    fingerprint = models.CharField(max_length=64, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    training_run = models.ForeignKey(
        "modelops.TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_model"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def replaced_by(self, folder: Path) -> str | None:
        """The fingerprint of the model files in folder where they are not the ones this
        version was registered with (a newer model was put in their place); None where they
        are, where no fingerprint was recorded, or where folder holds no model."""
        if not self.fingerprint:
            return None
        try:
            found = fingerprint(folder)
        except FileNotFoundError:
            return None
        return found if found != self.fingerprint else None

    @property
    def folder(self) -> Path:
        """Where the version's files are on this host: its path (shipped models, or trained
        here), else the local copy of the folder kept in media storage (a worker on another
        host than the training one), fetched on first use."""
        path = Path(self.path)
        path = path if path.is_absolute() else Path(settings.MODEL_DIR) / path
        if (path / "config.json").is_file() or not self.stored_prefix:
            return path
        from crackportal import media

        return media.local_copy(
            self.stored_prefix, Path(settings.VAR_DIR) / "model-cache" / self.name
        )


class TrainingRun(models.Model):
    """A training job: its config, progress per epoch, log tail and resulting model version."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Kind(models.TextChoices):
        TRAIN = "train", "training"
        ADAPT = "adapt", "adaptation to tunnels"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TRAIN)
    config_name = models.CharField(max_length=100)
    config = models.JSONField(default=dict)
    # adaptation: the tunnels whose verified annotations it learns from, its time budget, the
    # annotated images held back to judge it, and the active model against the candidate on
    # them and on the base datasets' test splits (training/adapt.py)
    tunnels = models.ManyToManyField("assets.Tunnel", blank=True, related_name="+")
    minutes = models.FloatField(null=True, blank=True)
    held_back = models.JSONField(default=list, blank=True)
    comparison = models.JSONField(default=dict, blank=True)
    dataset = models.CharField(max_length=500, help_text="Dataset folder on the training host")
    include_annotations = models.BooleanField(default=False)
    init_from_active = models.BooleanField(
        default=False,
        help_text="Fine-tune the active model's weights instead of starting from scratch",
    )
    init_from = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # inside the current epoch, refreshed every few seconds: step, steps, running loss, and
    # the points of the running-loss curve [[epoch + step / steps, loss], ...]
    live = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    epoch = models.PositiveIntegerField(default=0)
    epochs = models.PositiveIntegerField(default=0)
    history = models.JSONField(default=list, blank=True)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"training #{self.pk} ({self.config_name}, {self.status})"


class ModelActivation(models.Model):
    """Every change of the active model: who, when, why, and the figures of both then."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="activations")
    previous = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    activated_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)
    worse_on = models.JSONField(
        default=list,
        blank=True,
        help_text="Splits on which it was worse than the model it replaced",
    )
    comparison = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-activated_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.version} activated {self.activated_at:%Y-%m-%d %H:%M}"
