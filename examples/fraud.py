"""A small example model: a fraud score over 6 features, and traffic that drifts on demand.

The ground truth is drawn from a logistic process over amount, age and country, and the
model is a logistic regression trained on it, so its scores are calibrated on the reference.
After the drift, transactions land where the model cannot tell fraud from the rest: amounts
crowd into a narrow band around 72 (where the score is near 0.5), customers are older, and
Spain, where fraud is likelier, sends five times its share. Accuracy falls, and so does its
CBPE estimate, which sees the scores move toward 0.5 before any label arrives.

    python examples/fraud.py    # rewrites reference.csv (features, prediction, label)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

NUMERIC = ("amount", "age", "n_items", "hour")
CATEGORICAL = ("country", "device")
COUNTRIES = ("DE", "FR", "US", "GB", "ES")
COUNTRY_P = (0.35, 0.25, 0.2, 0.12, 0.08)
DRIFTED_COUNTRY_P = (0.1, 0.1, 0.2, 0.2, 0.4)
DEVICES = ("ios", "android", "web")
DEVICE_P = (0.3, 0.4, 0.3)
# One training seed for the reference (`main`) and the demo's server, so both score with the
# same model and the reference's scores are the ones the server gives.
MODEL_SEED = 7
REFERENCE_ROWS = 3000


def generate(n: int, rng: np.random.Generator, *, drift: bool = False) -> pd.DataFrame:
    """Draw `n` transactions; with `drift`, amount, age and countries move (module docstring)."""
    if drift:
        amount = rng.normal(72.0, 5.0, n)
        age = rng.normal(50.0, 8.0, n)
    else:
        amount = rng.normal(50.0, 15.0, n)
        age = rng.normal(40.0, 12.0, n)
    return pd.DataFrame({
        "amount": amount.round(2),
        "age": age.round(1),
        "n_items": rng.normal(3.0, 1.0, n).round(2),
        "hour": rng.normal(14.0, 4.0, n).round(2),
        "country": rng.choice(COUNTRIES, n, p=DRIFTED_COUNTRY_P if drift else COUNTRY_P),
        "device": rng.choice(DEVICES, n, p=DEVICE_P),
    })


def true_labels(frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Ground truth: fraud is likelier for large amounts, young customers and Spain."""
    logit = (0.15 * (frame["amount"] - 50) - 0.06 * (frame["age"] - 40)
             + np.where(frame["country"] == "ES", 1.0, 0.0) - 3.0)
    return (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)


@dataclass
class FraudModel:
    """Logistic regression over one-hot countries and devices, trained at start."""

    classifier: LogisticRegression
    columns: list[str]

    @classmethod
    def train(cls, rng: np.random.Generator, n: int = 5000) -> FraudModel:
        """Train on `n` generated transactions."""
        frame = generate(n, rng)
        x = pd.get_dummies(frame, columns=list(CATEGORICAL), dtype=float)
        classifier = LogisticRegression(max_iter=1000).fit(x, true_labels(frame, rng))
        return cls(classifier, list(x.columns))

    def predict(self, features: dict[str, object]) -> float:
        """Fraud probability of one transaction."""
        row = pd.get_dummies(pd.DataFrame([features]), columns=list(CATEGORICAL), dtype=float)
        row = row.reindex(columns=self.columns, fill_value=0.0)
        return float(self.classifier.predict_proba(row)[0, 1])


def main() -> None:
    """Write the reference dataset the example configuration points at."""
    import pathlib

    rng = np.random.default_rng(MODEL_SEED)
    model = FraudModel.train(rng)
    frame = generate(REFERENCE_ROWS, rng)
    frame["prediction"] = [round(model.predict(row), 6) for row in frame.to_dict("records")]
    frame["label"] = true_labels(frame, rng)
    target = pathlib.Path(__file__).with_name("reference.csv")
    frame.to_csv(target, index=False)
    print(f"wrote {target} ({len(frame)} rows)")


if __name__ == "__main__":
    main()
