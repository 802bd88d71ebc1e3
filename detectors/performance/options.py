"""`PerformanceOptions`: what the labels mean, set once per model from its configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from detectors.errors import OptionsError

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")


@dataclass(frozen=True, slots=True)
class PerformanceOptions:
    """How predictions are read and compared with labels.

    Args:
        task: "classification" or "regression".
        positive_label: The positive class of a binary problem (precision, recall, F1,
            ROC AUC and the 1-D score are about it).
        threshold: A 1-D score at or above it predicts the positive label (used only when
            no class prediction is given).
        classes: The class order of 2-D scores and of the confusion matrix. None infers the
            sorted labels seen in the window, as scikit-learn does (its LabelBinarizer order).
        n_bins_ece: Equal-width bins over [0, 1] for the expected calibration error.

    Examples:
        >>> PerformanceOptions("classification", positive_label="yes").threshold
        0.5
        >>> PerformanceOptions("classification", threshold=1.5)
        Traceback (most recent call last):
        ...
        detectors.errors.OptionsError: threshold must be in (0, 1), got 1.5
    """

    task: Task
    positive_label: Any = 1
    threshold: float = 0.5
    classes: tuple[Any, ...] | None = None
    n_bins_ece: int = 10

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise OptionsError(f"task must be classification or regression, got {self.task!r}")
        if not 0 < self.threshold < 1:
            raise OptionsError(f"threshold must be in (0, 1), got {self.threshold}")
        if isinstance(self.n_bins_ece, bool) or not isinstance(self.n_bins_ece, int) or (
            self.n_bins_ece < 1
        ):
            raise OptionsError(f"n_bins_ece must be a positive integer, got {self.n_bins_ece!r}")
        if self.classes is not None:
            classes = tuple(self.classes)
            object.__setattr__(self, "classes", classes)
            if len(classes) < 2:
                raise OptionsError(f"classes must name at least two classes, got {classes!r}")
            if len(set(classes)) != len(classes):
                raise OptionsError(f"classes must be distinct, got {classes!r}")
            if len(classes) == 2 and self.positive_label not in classes:
                raise OptionsError(
                    f"positive_label {self.positive_label!r} is not one of the classes {classes!r}"
                )
