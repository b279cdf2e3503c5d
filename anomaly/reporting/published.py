"""The paper's published numbers and protocol, as data (REFERENCE.md sections 1, 4 and 6).

AUC and EER are percentages, as printed in the paper's Tables I and II. Keys: ``(task, tau)``, then the
dataset name as used in ``conf/dataset``.
"""

from __future__ import annotations

from collections.abc import Mapping

# (task, tau) -> dataset -> (AUC %, EER %). Table I is the prediction tau=5 row of Table II.
PUBLISHED: dict[tuple[str, int], dict[str, tuple[float, float]]] = {
    ("reconstruction", 5): {"ped1": (75.6, 28.9), "ped2": (87.5, 17.1), "avenue": (81.4, 26.1)},
    ("prediction", 2): {"ped1": (78.3, 27.1), "ped2": (86.1, 21.1)},
    ("prediction", 5): {
        "ped1": (80.8, 25.1),
        "ped2": (92.3, 14.4),
        "avenue": (84.8, 22.4),
        "subway_entrance": (90.2, 15.9),
        "subway_exit": (95.0, 8.0),
    },
    ("prediction", 8): {"ped1": (79.0, 26.5), "ped2": (89.6, 18.5)},
}

# Table II also prints Avenue 83.2 / 23.2 for prediction, but the copy at hand does not show whether
# for tau=2 or tau=8; it is therefore shown for neither.
UNCERTAIN_NOTE = (
    "Table II also prints Avenue 83.2 / 23.2 for prediction with tau=2 or tau=8 (not legible which in "
    "the copy at hand); it is shown for neither."
)

# The rows of Tables I/II in the paper's order; any other (task, tau) seen follows them.
PAPER_ROWS: list[tuple[str, int]] = [
    ("reconstruction", 5),
    ("prediction", 2),
    ("prediction", 5),
    ("prediction", 8),
]

# Columns in the paper's order, with the names it prints; any other dataset seen follows them.
PAPER_DATASETS: dict[str, str] = {
    "ped1": "Ped1",
    "ped2": "Ped2",
    "avenue": "Avenue",
    "subway_entrance": "Subway Entrance",
    "subway_exit": "Subway Exit",
}

# Table III: model size and test speed.
PAPER_PARAMETERS = 0.85e6
PAPER_FPS = 75.0
PAPER_DEVICE = "GeForce GTX TITAN X"

# The paper's test protocol (REFERENCE.md section 4), in the keys of results.json's "protocol".
PAPER_PROTOCOL: dict[str, object] = {
    "score": "paper", "smoothing_sigma": 0, "auc": "micro", "mask": False, "normalization": "paper",
}  # fmt: skip
# The authors zeroed the time-stamp area of Subway's error maps: there the paper's protocol is masked.
PAPER_MASKED_DATASETS = frozenset({"subway_entrance", "subway_exit"})
PAPER_PROTOCOL_TEXT = (
    "regularity from the per-video min-max normalised prediction error, no smoothing, "
    "micro AUC over all scored frames pooled"
)


def protocol_label(protocol: Mapping[str, object], dataset: str | None) -> str:
    """What of ``protocol`` (keys of ``PAPER_PROTOCOL``, ``mask`` as a truth value) differs from the paper's
    protocol on this dataset, e.g. ``"score=psnr, smoothing sigma=2"``; "" where nothing does."""
    parts = []
    for key, value in protocol.items():
        default = PAPER_PROTOCOL.get(key)
        if key == "mask":
            default = dataset in PAPER_MASKED_DATASETS
            if bool(value) != default:
                parts.append("time-stamp mask" if value else "no time-stamp mask")
        elif key == "smoothing_sigma":
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                parts.append(f"smoothing sigma={value:g}")
        elif key == "auc":
            if value != default:
                parts.append(f"{value} AUC")
        elif value != default and (default is not None or value not in (None, False, 0, "")):
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def paper_scores(
    task: str, tau: int, dataset: str, protocol: Mapping[str, object] | None = None
) -> tuple[float, float] | None:
    """The paper's (AUC %, EER %) for this cell of Tables I/II, or None where it prints none.

    With ``protocol`` (as for ``protocol_label``), also None where it differs from the paper's on this dataset:
    the paper's numbers are not a reference for a score, smoothing, AUC or time-stamp mask of another kind.
    """
    if protocol is not None and protocol_label(protocol, dataset):
        return None
    return PUBLISHED.get((task, tau), {}).get(dataset)


# The authors' held-out loss (Eq. 1, batch 4) of their Ped2 run, by iteration (REFERENCE.md section 3a; their
# log ped2_new_test.txt). One of their epochs is 1,500 iterations; iteration 120,000 is epoch 80.
AUTHORS_HELDOUT_LOSS: dict[str, dict[int, float]] = {
    "ped2": {
        1500: 120.6, 3000: 84.0, 4500: 70.3, 6000: 65.7, 7500: 58.1, 9000: 54.6, 10500: 54.8, 12000: 50.8,
        13500: 49.3, 15000: 47.2, 24000: 38.9, 36000: 33.5, 48000: 29.9, 60000: 28.0, 72000: 24.8,
        84000: 23.5, 96000: 22.7, 108000: 21.5, 120000: 20.75,
    },
}  # fmt: skip
