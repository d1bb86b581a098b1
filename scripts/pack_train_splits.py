"""Copy the train splits of datasets into a compact folder, for a GPU machine reached by upload.

    python scripts/pack_train_splits.py --out .gpudata ../shared/datasets/{cfd,deepcrack,...}

PNG photos become JPEG (default quality 92, no chroma subsampling: a 448² concrete photo
194 kB → 42 kB); JPEG files are copied as they are unless --reencode; masks stay PNG. Test splits are never
copied: they are evaluated where the shipped model is made, not on the GPU machine.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image


def pack(dataset: Path, out: Path, quality: int, reencode: bool) -> int:
    n = 0
    for kind in ("images", "masks"):
        target = out / dataset.name / "train" / kind
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted((dataset / "train" / kind).iterdir()):
            if kind == "masks" or (path.suffix.lower() in {".jpg", ".jpeg"} and not reencode):
                shutil.copyfile(path, target / path.name)
            else:
                Image.open(path).convert("RGB").save(
                    target / f"{path.stem}.jpg", quality=quality, subsampling=0
                )
            n += kind == "images"
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quality", type=int, default=92)
    parser.add_argument("--reencode", action="store_true", help="re-encode JPEG photos too")
    args = parser.parse_args()
    for dataset in args.datasets:
        print(f"{dataset.name}: {pack(dataset, args.out, args.quality, args.reencode)} train pairs")


if __name__ == "__main__":
    main()
