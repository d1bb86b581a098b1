"""Segmentation metrics accumulated over a whole split, each in [0, 1].

Pixel metrics count TP/FP/FN over every image of the split (not a mean of batch means).
ODS/OIS follow the crack-detection convention: a predicted crack pixel is correct when a
ground-truth crack pixel lies within `tolerance_px`, and a ground-truth pixel is found when a
predicted pixel lies within the same distance. ODS uses one threshold for the whole split,
OIS the best threshold per image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

DEFAULT_THRESHOLDS = np.round(np.arange(0.02, 0.99, 0.02), 2)


def _ratio(num: float, den: float, empty: float) -> float:
    return float(num / den) if den > 0 else empty


def prf(tp: float, fp: float, fn: float) -> dict[str, float]:
    """Precision, recall, F1 and IoU from counts; 0/0 cases read as perfect when nothing was due."""
    nothing_due = tp + fn == 0
    precision = _ratio(tp, tp + fp, 1.0 if nothing_due else 0.0)
    recall = _ratio(tp, tp + fn, 1.0)
    f1 = _ratio(2 * precision * recall, precision + recall, 0.0)
    iou = _ratio(tp, tp + fp + fn, 1.0)
    return {"precision": precision, "recall": recall, "f1": f1, "iou": iou}


def _distance_to(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) of every pixel to the nearest True pixel of mask."""
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


@dataclass
class PixelCounter:
    """Accumulates exact-pixel TP/FP/FN at one threshold over a split."""

    threshold: float = 0.5
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def update(self, prob: np.ndarray, truth: np.ndarray) -> None:
        pred = prob >= self.threshold
        truth = truth.astype(bool)
        self.tp += int(np.count_nonzero(pred & truth))
        self.fp += int(np.count_nonzero(pred & ~truth))
        self.fn += int(np.count_nonzero(~pred & truth))

    def result(self) -> dict[str, float]:
        return prf(self.tp, self.fp, self.fn)


@dataclass
class ToleranceCounter:
    """Accumulates tolerance-matched counts at many thresholds for ODS / OIS."""

    tolerance_px: float = 2.0
    thresholds: np.ndarray = field(default_factory=lambda: DEFAULT_THRESHOLDS.copy())
    # per threshold: matched predictions, predictions, matched truths, truths
    totals: np.ndarray = field(init=False)
    per_image_best_f: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.totals = np.zeros((len(self.thresholds), 4), dtype=np.float64)

    def update(self, prob: np.ndarray, truth: np.ndarray) -> None:
        truth = truth.astype(bool)
        near_truth = _distance_to(truth) <= self.tolerance_px
        n_truth = int(truth.sum())
        counts = np.zeros((len(self.thresholds), 4), dtype=np.float64)
        for i, t in enumerate(self.thresholds):
            pred = prob >= t
            n_pred = int(pred.sum())
            matched_pred = int(np.count_nonzero(pred & near_truth))
            matched_truth = int(np.count_nonzero(truth & (_distance_to(pred) <= self.tolerance_px)))
            counts[i] = (matched_pred, n_pred, matched_truth, n_truth)
        self.totals += counts
        self.per_image_best_f.append(max(self._f(c) for c in counts))

    @staticmethod
    def _f(c: np.ndarray) -> float:
        matched_pred, n_pred, matched_truth, n_truth = c
        nothing_due = n_truth == 0
        precision = _ratio(matched_pred, n_pred, 1.0 if nothing_due else 0.0)
        recall = _ratio(matched_truth, n_truth, 1.0)
        return _ratio(2 * precision * recall, precision + recall, 0.0)

    def result(self) -> dict[str, float]:
        fs = [self._f(c) for c in self.totals]
        best = int(np.argmax(fs))
        return {
            "ods": float(fs[best]),
            "ods_threshold": float(self.thresholds[best]),
            "ois": float(np.mean(self.per_image_best_f)) if self.per_image_best_f else 0.0,
        }


@dataclass
class ThresholdSweep:
    """Exact-pixel counts at many thresholds, to pick the threshold that maximises F1."""

    thresholds: np.ndarray = field(default_factory=lambda: DEFAULT_THRESHOLDS.copy())
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros((len(self.thresholds), 3), dtype=np.float64)

    def update(self, prob: np.ndarray, truth: np.ndarray) -> None:
        truth = truth.astype(bool)
        # histogram trick: one pass instead of one comparison per threshold
        edges = np.concatenate([self.thresholds, [np.inf]])
        pos_hist, _ = np.histogram(prob[truth], bins=np.concatenate([[-np.inf], edges]))
        neg_hist, _ = np.histogram(prob[~truth], bins=np.concatenate([[-np.inf], edges]))
        # predicted positive at threshold i = all values >= thresholds[i]
        tp = pos_hist[::-1].cumsum()[::-1][1:]
        fp = neg_hist[::-1].cumsum()[::-1][1:]
        fn = truth.sum() - tp
        self.counts += np.stack([tp, fp, fn], axis=1)

    def at(self, threshold: float) -> dict[str, float]:
        """Precision, recall, F1 and IoU at the sweep's threshold nearest to threshold."""
        return prf(*self.counts[int(np.argmin(np.abs(self.thresholds - threshold)))])

    def best(self, plateau: float = 0.0) -> tuple[float, dict[str, float]]:
        """The threshold of the best F1 and the figures there.

        plateau > 0: the middle of the run of thresholds around the best whose F1 is within
        `plateau` of it. On a few images F1 can be flat over a wide range, and its exact
        maximum there is noise (on 4 concrete-uav images the best threshold jumped between
        0.04 and 0.96 from epoch to epoch at F1 0.76-0.80).
        """
        results = [prf(*c) for c in self.counts]
        f1 = np.array([r["f1"] for r in results])
        i = int(np.argmax(f1))
        if plateau > 0:
            lo = hi = i
            while lo > 0 and f1[lo - 1] >= f1[i] - plateau:
                lo -= 1
            while hi < len(f1) - 1 and f1[hi + 1] >= f1[i] - plateau:
                hi += 1
            i = (lo + hi) // 2
        return float(self.thresholds[i]), results[i]


@dataclass
class CalibrationCounter:
    """Expected calibration error over a split: pixels binned by predicted probability; in
    each bin, |mean probability − share that is crack|, weighted by the bin's pixels.

    A calibrated map (ECE near 0) means what it says: of the pixels called 0.7, about 70 %
    are crack, so a threshold on it is a statement about risk.
    """

    bins: int = 10
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros((self.bins, 3), dtype=np.float64)  # pixels, sum p, cracks

    def update(self, prob: np.ndarray, truth: np.ndarray) -> None:
        index = np.minimum((prob.ravel() * self.bins).astype(np.int64), self.bins - 1)
        self.counts[:, 0] += np.bincount(index, minlength=self.bins)
        self.counts[:, 1] += np.bincount(index, weights=prob.ravel(), minlength=self.bins)
        self.counts[:, 2] += np.bincount(
            index, weights=truth.ravel().astype(np.float64), minlength=self.bins
        )

    def result(self) -> dict[str, float]:
        n, p, y = self.counts.T
        filled = n > 0
        gap = np.abs(p[filled] / n[filled] - y[filled] / n[filled])
        return {"ece": float(np.sum(gap * n[filled]) / max(n.sum(), 1))}


def best_across(sweeps: dict[str, ThresholdSweep]) -> tuple[float, dict[str, float], dict]:
    """One threshold for several surfaces: the one with the best mean F1 over the sources.

    Returns (threshold, the mean of each source's precision/recall/F1/IoU there, each
    source's own figures there). A pooled sweep would let the dataset with the most crack
    pixels choose for all of them.
    """
    sweeps = [(name, s) for name, s in sorted(sweeps.items()) if s.counts.any()]
    if not sweeps:
        raise ValueError("no validation pixels")
    per_threshold = [
        [prf(*s.counts[i]) for _, s in sweeps] for i in range(len(sweeps[0][1].thresholds))
    ]
    means = [float(np.mean([r["f1"] for r in rows])) for rows in per_threshold]
    i = int(np.argmax(means))
    rows = per_threshold[i]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("precision", "recall", "f1", "iou")}
    return (
        float(sweeps[0][1].thresholds[i]),
        mean,
        {n: r for (n, _), r in zip(sweeps, rows, strict=True)},
    )


def evaluate_probabilities(
    pairs: list[tuple[np.ndarray, np.ndarray]], threshold: float = 0.5, tolerance_px: float = 2.0
) -> dict[str, float]:
    """All metrics for (probability map, truth mask) pairs of one split."""
    pixel = PixelCounter(threshold)
    tolerant = ToleranceCounter(tolerance_px)
    for prob, truth in pairs:
        pixel.update(prob, truth)
        tolerant.update(prob, truth)
    return {**pixel.result(), **tolerant.result(), "threshold": threshold, "images": len(pairs)}
