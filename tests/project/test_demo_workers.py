"""The demo runs training in a worker process of its own, so uploads are never held back."""

import re

from tests.conftest import ROOT


def test_the_demo_starts_separate_inference_and_training_workers():
    script = (ROOT / "scripts" / "demo.sh").read_text()
    queues = re.findall(r"celery -A crackportal worker[^\n]*-Q ([a-z,]+)", script)
    assert sorted(queues) == ["inference,maintenance", "training"]
