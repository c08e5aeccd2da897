"""Training reports as files: learning curves and confusion matrices (PNG, matplotlib), history as CSV."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..image import atomic_write


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def write_history_csv(history: Sequence[dict[str, Any]], path: Path) -> None:
    """One row per epoch (epoch, phase, train_loss, val_accuracy)."""
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)

    atomic_write(path, write)


def plot_learning_curves(history: Sequence[dict[str, Any]], path: Path, best_epoch: int | None = None) -> None:
    """Training loss and validation accuracy per epoch; the head-only phase is shaded."""
    plt = _figure()
    epochs = [h["epoch"] for h in history]
    fig, loss_ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    acc_ax = loss_ax.twinx()
    loss_ax.plot(epochs, [h["train_loss"] for h in history], "o-", color="tab:red", label="training loss")
    acc_ax.plot(epochs, [h["val_accuracy"] for h in history], "s-", color="tab:blue", label="validation accuracy")
    head = [h["epoch"] for h in history if h.get("phase") == "head"]
    if head:
        loss_ax.axvspan(min(head) - 0.5, max(head) + 0.5, color="0.92", zorder=0, label="head only")
    if best_epoch:
        acc_ax.axvline(best_epoch, color="tab:blue", linestyle=":", label=f"best epoch ({best_epoch})")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss")
    acc_ax.set_ylabel("validation accuracy")
    handles = loss_ax.get_legend_handles_labels()[0] + acc_ax.get_legend_handles_labels()[0]
    loss_ax.legend(handles=handles, loc="center right", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path) -> None:
    """Rows: true class, columns: predicted class; counts written in the cells when there are few classes."""
    plt = _figure()
    n = len(classes)
    size = min(14.0, 2.5 + 0.35 * n)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    if n <= 30:
        ax.set_xticks(range(n), classes, rotation=90, fontsize=8)
        ax.set_yticks(range(n), classes, fontsize=8)
        peak = max(max(row) for row in matrix) or 1
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                        color="white" if count > peak / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
