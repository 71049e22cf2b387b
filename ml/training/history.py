"""A run's history as files: one row of ``metrics.csv`` per epoch, and ``curves.png``."""

from __future__ import annotations

import csv
from pathlib import Path

METRIC_FIELDS = ("epoch", "step", "elapsed_min", "lr", "train_loss", "val_loss", "dice_positive",
                 "auc", "challenge", "challenge_22", "challenge_22_tuned")


def write_metrics(history: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METRIC_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(epochs, [row["train_loss"] for row in history], "o-", label="train loss")
    left.plot(epochs, [row["val_loss"] for row in history], "o-", label="validation loss")
    left.set_xlabel("epoch"), left.set_title("loss"), left.legend()
    for key, label in (("dice_positive", "Dice, positives"), ("auc", "image AUC"),
                       ("challenge_22_tuned", "challenge metric @22%")):
        right.plot(epochs, [row[key] for row in history], "o-", label=label)
    right.set_xlabel("epoch"), right.set_ylim(0, 1), right.set_title("validation"), right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
