"""What a user installs: the wheel's contents, and a light import."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_weights_data_licences_and_type_marker(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("trace_forecast-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ("trace_forecast/weights/trace-moment-tiny/model.safetensors",
                 "trace_forecast/weights/trace-moment-tiny/config.json",
                 "trace_forecast/weights/trace-moment-tiny-v4/model.safetensors",
                 "trace_forecast/weights/trace-moment-tiny-v4/config.json",
                 "trace_forecast/datasets/ETTh1.csv.gz", "trace_forecast/datasets/LICENSE-ETT",
                 "trace_forecast/datasets/NOTICE-ETT", "trace_forecast/py.typed"):
        assert path in names, f"{path} missing from the wheel"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "the package's LICENSE"


def test_estimators_import_without_the_training_stack():
    """Defining, configuring and validating an estimator must not load transformers, PEFT
    or Lightning (seconds of import time); they load on the first fit."""
    code = ("import sys; from trace_forecast import TraceForecaster, TraceAnomalyDetector; "
            "TraceForecaster(context_length=64).get_params(); "
            "print(sorted(m for m in ('transformers', 'peft', 'pytorch_lightning') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_package_import_is_lazy():
    code = "import sys, trace_forecast; print('torch' in sys.modules, 'sktime' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.stdout.strip() == "False False"
