"""The web process never loads the neural network: pages and uploads stay light."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_url_conf_and_every_page_load_no_torch(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "tests.project.web_probe", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    # the probe really rendered the pages and took the upload
    assert set(probe["statuses"].values()) <= {200, 302, 404}, probe["statuses"]
    assert probe["statuses"]["run-detail"] == 200 and probe["statuses"]["upload"] == 302
    assert probe["after_urls"] == []
    assert probe["after_pages"] == []
