"""Browser fixtures: Debian's Chromium driven by Playwright (never a downloaded browser)."""

import os
import shutil

import pytest
from PIL import Image

from inference.synthetic import survey_image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(artifacts_dir):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CRACKPORTAL_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required for the browser tests (apt-get install chromium)")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test are still sync.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def login(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def synthetic_dataset(tmp_path, settings):
    for split, seeds in (("train", range(6)), ("test", range(100, 102))):
        (tmp_path / split / "images").mkdir(parents=True)
        (tmp_path / split / "masks").mkdir(parents=True)
        for seed in seeds:
            rgb, mask, _ = survey_image(128, 96, n_cracks=2, seed=seed, widths_px=(2.5, 5.0))
            Image.fromarray(rgb).save(tmp_path / split / "images" / f"{seed}.png")
            Image.fromarray(mask.astype("uint8") * 255).save(
                tmp_path / split / "masks" / f"{seed}.png"
            )
    settings.TRAINING_DATASETS = {"synthetic": str(tmp_path)}
    return tmp_path
