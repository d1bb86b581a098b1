"""Reviewing detections in the browser with the mouse and the keys."""

import pytest
from django.core.files.base import ContentFile

from crackportal.inspections.models import Crack
from tests.conftest import login, survey_jpeg
from tests.factories import make_crack, make_image, make_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_inspector_rejects_a_joint_with_a_key_and_accepts_the_rest(
    live_server, page, inspector, tunnel, settings, tmp_path, artifacts_dir, monkeypatch
):
    from crackportal.inspections import services

    settings.MEDIA_ROOT = tmp_path
    queued = []  # the re-tracking a rejection asks for (no worker in this test)
    monkeypatch.setattr(services, "enqueue_tracking", queued.append)
    run = make_run(tunnel)
    image = make_image(run, "a.jpg", (0.0, 0.48), (0.0, 0.32), (480, 320))
    image.file.save("a.jpg", ContentFile(survey_jpeg(seed=3)))
    joint = make_crack(image, 0, (0.05, 0.10), (0.40, 0.10), width_mm=1.2)
    other = make_crack(image, 1, (0.10, 0.25), (0.30, 0.28), width_mm=0.3)
    login(page, live_server, "inspector", "inspect-pass-123")
    page.goto(f"{live_server.url}/images/{image.pk}/")
    page.click(f"#cracks tr[data-crack='{joint.pk}'] td:first-child")
    page.keyboard.press("j")
    page.wait_for_selector(f"#cracks tr[data-crack='{joint.pk}'] .badge-rejected")
    page.screenshot(path=str(artifacts_dir / "review-image.png"), full_page=True)
    joint.refresh_from_db()
    assert (joint.review, joint.review_reason) == ("rejected", "joint")
    assert queued == [run.pk]
    page.click("text=Accept the rest")
    page.wait_for_selector("#review-progress")
    assert "Reviewed 1 of 1 images" in page.locator("#review-progress").inner_text()
    assert Crack.objects.get(pk=other.pk).review == "accepted"
    page.screenshot(path=str(artifacts_dir / "review-run.png"), full_page=True)
