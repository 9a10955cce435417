"""Every ``python`` code block of the user-facing docs runs (blocks of a page share state)."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ["user_guide.md", "darts.md"]
DOCTEST_MODULES = ["trace_forecast.darts.model", "trace_forecast.darts.scorer"]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)


@pytest.mark.slow
@pytest.mark.usefixtures("small_fits")
@pytest.mark.parametrize("page", PAGES)
def test_examples_run(page):
    blocks = python_blocks(DOCS / page)
    assert blocks, f"{page} has no python examples"
    namespace: dict = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page}[block {i}]", "exec"), namespace)
        except Exception as err:  # pragma: no cover - the message names the failing block
            raise AssertionError(f"{page}, block {i} failed: {err!r}\n{block}") from err


@pytest.mark.parametrize("module", DOCTEST_MODULES)
def test_docstring_examples_run(module):
    pytest.importorskip("darts")
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, f"{module}: {result}"


# ------------------------------------------------------------------ names in the prose
FRONT_ENDS = ("TraceForecaster", "TraceAnomalyDetector", "TraceModel", "TraceAnomalyScorer")
PROSE = [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]


def _classes() -> dict:
    pytest.importorskip("darts")
    from trace_forecast import TraceAnomalyDetector, TraceForecaster
    from trace_forecast.darts import TraceAnomalyScorer, TraceModel

    return {"TraceForecaster": TraceForecaster, "TraceAnomalyDetector": TraceAnomalyDetector,
            "TraceModel": TraceModel, "TraceAnomalyScorer": TraceAnomalyScorer}


def _accepted(cls) -> set[str]:
    import inspect

    names = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    if cls.__name__ == "TraceModel":  # Darts' own TorchForecastingModel parameters, through **kwargs
        from darts.models.forecasting.torch_forecasting_model import TorchForecastingModel

        names |= set(inspect.signature(TorchForecastingModel.__init__).parameters) | {"enable_finetuning"}
    return names


def _spans() -> list[tuple[str, str]]:
    return [(page.name, span) for page in PROSE for span in re.findall(r"`([^`\n]+)`", page.read_text())]


def test_every_parameter_named_in_a_constructor_call_exists():
    classes = _classes()
    unknown = []
    for page, span in _spans():
        for name, args in re.findall(r"\b(" + "|".join(FRONT_ENDS) + r")\(([^()]*)\)", span):
            for key in re.findall(r"\b([a-z_]+)\s*=", args):
                if key not in _accepted(classes[name]):
                    unknown.append(f"{page}: {name}({key}=...)")
    assert not unknown, unknown


def test_every_method_named_on_a_front_end_exists():
    classes = _classes()
    missing = [f"{page}: {name}.{method}" for page, span in _spans()
               for name, method in re.findall(r"\b(" + "|".join(FRONT_ENDS) + r")(?:\([^()]*\))?\.([a-z_]\w*)", span)
               if not hasattr(classes[name], method)]
    assert not missing, missing


def test_stated_defaults_are_the_defaults():
    from trace_forecast.parameters import PARAMETERS

    stated = []
    for page in PROSE:
        text = page.read_text()
        stated += [(page.name, k, v) for k, v in re.findall(r"default `([a-z_]+)=([^`]+)`", text)]
        stated += [(page.name, k, v) for k, v in re.findall(r"`([a-z_]+)` \(default `?([^)`]+)`?\)", text)]
    wrong = [f"{page}: {name}={value}" for page, name, value in stated
             if name in PARAMETERS and repr(PARAMETERS[name].default).strip("'") != value.strip('"')]
    assert stated and not wrong, wrong


def test_readme_tables_are_the_generated_ones():
    """The README's results tables are copied from the data-size and anomaly-suite pages,
    which the benchmarks write from their committed results: no figure on the front page is
    typed by hand."""
    readme = (DOCS.parent / "README.md").read_text()
    pages = {line for name in ("benchmarks_data_size.md", "benchmarks_anomaly.md")
             for line in (DOCS / name).read_text().splitlines()}
    rows = [line for line in readme.splitlines() if line.startswith("|")]
    assert len(rows) >= 5
    missing = [line for line in rows if line not in pages]
    assert not missing, f"README rows not in a generated page: {missing}"


def test_model_cards_leg_by_leg_table_is_the_generated_one():
    """The model card's table of fine-tuned cells by campaign leg is what
    ``python -m benchmarks.report --campaign`` prints from the committed result files."""
    from benchmarks.report import campaign_leg_file, campaign_table

    card = (DOCS / "model_card.md").read_text().splitlines()
    start = next(i for i, line in enumerate(card) if line.startswith("| cell | v3 | leg "))
    end = next(i for i in range(start, len(card)) if card[i].startswith("| better / tied / worse"))
    legs = re.findall(r"leg (\d+)", card[start])
    columns = {f"leg {n}": campaign_leg_file(n) for n in legs}
    assert len(legs) >= 12 and campaign_table(columns) == "\n".join(card[start:end + 1])
