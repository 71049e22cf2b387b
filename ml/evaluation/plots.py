"""The report's pictures: the test half's ROC curves (all images, DICOM only) with the operating
point marked, and a gallery of the worst test cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.core import metrics
from ml.core.decision import OperatingPoint
from ml.core.reading import read_xray
from ml.evaluation.records import Record, decide_and_score

GALLERY_SIZE = 8


def plot_roc(test_rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(5.5, 5.5))
    for name, keep, style in (("all images", lambda r: True, "-"),
                              ("DICOM only", lambda r: r["format"] == "dicom", "--")):
        rows = [r for r in test_rows if keep(r)]
        labels = np.array([r["has_pneumothorax"] for r in rows], dtype=bool)
        if not labels.any() or labels.all():
            continue
        scores = [r["probability"] for r in rows]
        fpr, tpr, _ = metrics.roc_curve(scores, labels)
        auc = metrics.roc_auc(scores, labels)
        line, = axis.plot(fpr, tpr, style, label=f"{name} (AUC {auc:.3f}, n={len(rows)})")
        sensitivity, specificity = metrics.sensitivity_specificity(
            [r["positive"] for r in rows], labels)
        axis.plot([1 - specificity], [sensitivity], "o", color=line.get_color())
    axis.plot([0, 1], [0, 1], ":", color="grey")
    axis.set_xlabel("1 - specificity"), axis.set_ylabel("sensitivity")
    axis.set_title("Image-level ROC, test half (dot: operating point)")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_gallery(records: list[Record], test_rows: list[dict], point: OperatingPoint,
                 path: Path, count: int = GALLERY_SIZE) -> list[str]:
    """The worst test cases by Dice (then by confidence in the wrong call): truth outlined in
    green, prediction filled in red."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_id = {r.sample.image_id: r for r in records}
    worst = sorted(test_rows, key=lambda r: (r["dice"], -abs(r["probability"] - r["has_pneumothorax"])))
    worst = worst[:count]
    columns = 4
    rows = max(1, -(-len(worst) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.5 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, row in zip(axes.flat, worst):
        record = by_id[row["image_id"]]
        pixels = read_xray(record.sample.image_path).pixels
        mask, _, _, _ = decide_and_score(record, point)
        truth = record.sample.load_mask(record.height, record.width)
        side = 384
        image = cv2.cvtColor(cv2.resize(pixels, (side, side), interpolation=cv2.INTER_AREA),
                             cv2.COLOR_GRAY2RGB)
        predicted = cv2.resize(mask.astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST) > 0
        image[predicted] = (0.55 * image[predicted] + 0.45 * np.array([255, 0, 0])).astype(np.uint8)
        small_truth = cv2.resize(truth, (side, side), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(small_truth, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(image, contours, -1, (0, 255, 0), 1)
        axis.imshow(image)
        axis.set_title(f"…{row['image_id'][-10:]} ({row['format']})\n"
                       f"truth {'+' if row['has_pneumothorax'] else '-'}  p={row['probability']:.2f}  "
                       f"Dice {row['dice']:.2f}", fontsize=8)
    fig.suptitle("Worst test cases: truth outlined green, prediction red", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [row["image_id"] for row in worst]
