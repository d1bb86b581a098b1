"""Model registry and training pages (admin role)."""

from django import forms
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from crackportal.accounts.roles import ADMIN, role_required
from crackportal.api.serializers import TrainingRunSerializer
from crackportal.modelops import services, training_services
from crackportal.modelops.models import ModelActivation, ModelVersion, TrainingRun
from training.shares import BALANCED_SHARE, TUNNELS_FIRST_SHARE


class TrainingForm(forms.Form):
    config_name = forms.ChoiceField(label="Configuration")
    init_from_active = forms.BooleanField(
        label="Start from the active model (fine-tune)", required=False, initial=True
    )
    dataset = forms.ChoiceField(label="Base dataset", required=False)
    include_annotations = forms.BooleanField(
        label="Include the portal's verified annotations", required=False, initial=True
    )
    epochs = forms.IntegerField(min_value=1, max_value=500)

    def __init__(self, *args, facts: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        configs = training_services.available_configs()
        self.fields["config_name"].choices = [(c, c) for c in configs]
        default = training_services.DEFAULT_CONFIG
        if default in configs:
            self.fields["config_name"].initial = default
            self.fields["epochs"].initial = facts["configs"][default]["epochs"] if facts else None
        datasets = list(training_services.available_datasets())
        self.fields["dataset"].choices = [("", "— none —")] + [(n, n) for n in datasets]
        if datasets:
            self.fields["dataset"].initial = datasets[0]
        if facts is not None:
            n = facts["annotations"]
            self.fields["include_annotations"].help_text = (
                f"{n} image{'s' if n != 1 else ''} with a verified annotation"
                if n
                else "No verified annotations yet: correct or confirm masks on image pages first"
            )


@role_required(ADMIN)
def model_list(request):
    return render(
        request,
        "modelops/model_list.html",
        {
            "versions": [(v, services.files_replaced(v)) for v in ModelVersion.objects.all()],
            "activations": ModelActivation.objects.select_related(
                "version", "previous", "activated_by"
            )[:50],
        },
    )


class ActivationForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept with the activation. Required when the model is worse than the active one.",
    )


@role_required(ADMIN)
def model_activate(request, pk: int):
    """Confirm an activation: the candidate's figures beside the active model's first."""
    version = get_object_or_404(ModelVersion, pk=pk)
    active = ModelVersion.objects.filter(is_active=True).first()
    comparison = services.compare_versions(version, active)
    form = ActivationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.activate_model_version(
                version=version, by=request.user, reason=form.cleaned_data["reason"]
            )
        except services.ActivationRefused as exc:
            form.add_error("reason", str(exc))
        else:
            messages.success(request, f"{version.name} is now the active model; new images use it.")
            return redirect("model-list")
    return render(
        request,
        "modelops/model_activate.html",
        {"version": version, "active": active, "comparison": comparison, "form": form},
    )


# what the two shares measured (training.adapt_bench, README "Models in the portal")
SHARE_MEASURED = (
    "Measured adapting a model that never saw tunnel-lining to 20 of its images for 15 minutes "
    "on a 2-core CPU: balanced reached 87–93 % of the all-data model's F1 on its test images "
    "(the more, the faster the CPU), and the other surfaces' F1 fell by 0.007–0.017 on their "
    "images the run never drew; three quarters reached 91–92 %, and the other surfaces fell by "
    "0.041."
)


class AdaptForm(forms.Form):
    tunnels = forms.ModelMultipleChoiceField(
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        label="Tunnels whose verified annotations it learns from",
    )
    minutes = forms.FloatField(
        label="Time budget (minutes of training)", min_value=0.5, max_value=600, initial=15
    )
    # measured trade (README, "Models in the portal"): three quarters scored higher on the new
    # surface's left-out images and forgot more of the other surfaces
    share = forms.TypedChoiceField(
        label="Crops from these tunnels",
        choices=[
            (
                BALANCED_SHARE,
                "Balanced: half (forgets least of other surfaces)",
            ),
            (
                TUNNELS_FIRST_SHARE,
                "These tunnels first: three quarters (best on them; other surfaces drop)",
            ),
        ],
        coerce=float,
        initial=BALANCED_SHARE,
        widget=forms.RadioSelect,
        help_text=SHARE_MEASURED,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from crackportal.assets.models import Tunnel

        counts = training_services.annotation_counts_by_tunnel()
        self.fields["tunnels"].queryset = Tunnel.objects.filter(pk__in=counts).order_by("code")
        self.fields["tunnels"].label_from_instance = lambda t: (
            f"{t.code} — {t.name} ({counts.get(t.pk, 0)} annotated images)"
        )


@role_required(ADMIN)
@require_POST
def training_adapt(request):
    """Queue an adaptation of the active model to the chosen tunnels."""
    form = AdaptForm(request.POST)
    if form.is_valid():
        try:
            run = training_services.start_adaptation(
                tunnels=form.cleaned_data["tunnels"],
                minutes=form.cleaned_data["minutes"],
                share=form.cleaned_data["share"],
                created_by=request.user,
            )
        except training_services.TrainingError as exc:
            messages.error(request, str(exc))
        else:
            return redirect("training-detail", pk=run.pk)
    else:
        messages.error(request, "Choose tunnels with verified annotations and a time budget.")
    return redirect("training-list")


@role_required(ADMIN)
def training_list(request):
    facts = training_services.form_facts()
    form = TrainingForm(request.POST or None, facts=facts)
    if request.method == "POST" and form.is_valid():
        try:
            run = training_services.start_training_run(created_by=request.user, **form.cleaned_data)
        except training_services.TrainingError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("training-detail", pk=run.pk)
    return render(
        request,
        "modelops/training_list.html",
        {
            "form": form,
            "runs": TrainingRun.objects.select_related("result")[:50],
            "busy": TrainingRun.objects.filter(status__in=training_services.ACTIVE).exists(),
            "facts": facts,
            "adapt_form": AdaptForm(),
        },
    )


@role_required(ADMIN)
def training_detail(request, pk: int):
    run = get_object_or_404(TrainingRun.objects.select_related("result"), pk=pk)
    comparison = None
    if run.comparison:
        baseline = run.comparison.get("baseline", {})
        candidate = run.result.metrics if run.result else {}
        comparison = {
            "baseline_model": run.comparison.get("baseline_model"),
            "splits": [
                {
                    "split": split,
                    "active": figures,
                    "candidate": candidate.get(split, {}),
                    "change": candidate.get(split, {}).get("f1", 0) - figures.get("f1", 0)
                    if "f1" in candidate.get(split, {}) and "f1" in figures
                    else None,
                }
                for split, figures in baseline.items()
            ],
            "rows": _held_back_rows(run.comparison.get("held_back_rows", [])),
        }
    return render(
        request,
        "modelops/training_detail.html",
        {"run": run, "state": TrainingRunSerializer(run).data, "comparison": comparison},
    )


def _held_back_rows(rows: list[dict]) -> list[dict]:
    """The comparison's rows with the portal images they name ("portal-<pk>"), so the page
    says which photo of which inspection each is, not a number."""
    from crackportal.inspections.models import SurveyImage

    def pk(row) -> int | None:
        number = str(row.get("name", "")).removeprefix("portal-")
        return int(number) if number.isdigit() else None

    images = SurveyImage.objects.select_related("run__tunnel").in_bulk(
        [p for p in map(pk, rows) if p is not None]
    )
    return [{**row, "image": images.get(pk(row))} for row in rows]


@role_required(ADMIN)
def training_status(request, pk: int):
    run = get_object_or_404(TrainingRun.objects.select_related("result"), pk=pk)
    return JsonResponse(TrainingRunSerializer(run).data)


@role_required(ADMIN)
@require_POST
def training_cancel(request, pk: int):
    training_services.request_cancel(run=get_object_or_404(TrainingRun, pk=pk))
    messages.info(request, "Cancel requested: the run stops within 30 seconds.")
    return redirect("training-detail", pk=pk)


@role_required(ADMIN)
@require_POST
def training_retry(request, pk: int):
    """Start a failed or cancelled run again: same configuration, dataset and annotations."""
    old = get_object_or_404(TrainingRun, pk=pk)
    try:
        run = training_services.retry_training_run(run=old, created_by=request.user)
    except training_services.TrainingError as exc:
        messages.error(request, str(exc))
        return redirect("training-detail", pk=pk)
    return redirect("training-detail", pk=run.pk)
