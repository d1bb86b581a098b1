"""The probability map is stored with each image; cracks can be measured again without the network."""

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from PIL import Image

from crackportal.inspections import processing
from crackportal.inspections.models import Crack, SurveyImage
from tests.conftest import survey_jpeg
from tests.factories import make_image, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def segmented(tunnel, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    run = make_run(tunnel)
    image = make_image(run, size=(480, 320), chainage_m=(0.0, 0.48), arc_m=(0.0, 0.32))
    image.mm_per_px = 1.0
    image.status = SurveyImage.Status.PROCESSING
    image.file.save("s.jpg", ContentFile(survey_jpeg(seed=4)))
    processing.segment_survey_image(image_id=image.pk)
    image.refresh_from_db()
    return image


def test_segmentation_stores_the_probability_map_beside_the_mask(segmented):
    with segmented.probability.open("rb") as fh, Image.open(fh) as im:
        assert im.mode == "L" and im.size == (480, 320)
        assert im.getextrema()[1] >= 200  # confident somewhere
    assert segmented.cracks.exists()
    crack = segmented.cracks.first()
    assert crack.resolution_mm == 1.0


def test_remeasure_restores_the_measurements_and_tracks_again(segmented, capsys):
    before = list(segmented.cracks.values_list("length_mm", "width_max_mm", "severity"))
    Crack.objects.filter(image=segmented).update(width_max_mm=99.0, severity="critical")
    call_command("remeasure_cracks", run=segmented.run_id)
    after = list(
        Crack.objects.filter(image=segmented).values_list("length_mm", "width_max_mm", "severity")
    )
    assert after == before
    assert not Crack.objects.filter(image=segmented, track__isnull=True).exists()
    assert "image(s) re-measured" in capsys.readouterr().out


def test_remeasure_needs_exactly_one_selection():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("remeasure_cracks")


def test_a_width_below_one_pixel_is_labelled_as_unresolved():
    crack = Crack(width_max_mm=0.3, resolution_mm=0.5)
    assert crack.width_below_resolution
    assert crack.width_max_label == "< 0.50 mm (< 1 px)"
    assert Crack(width_max_mm=1.26, resolution_mm=0.5).width_max_label == "1.26 mm"
