"""Every ``python`` code block of the user-facing docs runs (blocks of a page share state)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ["user_guide.md"]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)


@pytest.mark.slow
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
