"""pytest's doctest collection of the sidecar in driftline's own virtual environment.

`driftline_sidecar.mlflow` imports MLflow, which this environment does not install (its pins
clash with ours); its doctests and its tests run in MLflow's own environment
(tests/integration/test_sidecar_mlflow.py).
"""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("mlflow") else ["driftline_sidecar/mlflow.py"]
