"""Every notebook runs top to bottom on a fresh kernel of this venv, and is committed with its outputs stripped."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 300


def _committed_notebooks() -> list[Path]:
    """Every notebook in the repository, outside hidden directories (.venv, .git, .dvc, checkpoints)."""
    found = REPO.rglob("*.ipynb")
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(REPO).parts))


def test_there_are_notebooks_to_run() -> None:
    assert NOTEBOOKS, "notebooks/ has no notebook: the execution test below would pass vacuously"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEIQ_DATA_DIR", str(data_dir))
    notebook = nbformat.read(path, as_version=4)
    # `python3` resolves to the kernelspec ipykernel installs into this venv; a user-wide one could shadow it.
    check = f"import sys\nassert sys.prefix == {sys.prefix!r}, f'kernel runs {{sys.executable}}'"
    notebook.cells.insert(0, nbformat.v4.new_code_cell(check))
    before = sorted(path.parent.rglob("*"))
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError with the failing cell and its traceback
    assert sorted(path.parent.rglob("*")) == before, "a notebook wrote next to itself; write into a temporary dir"


@pytest.mark.parametrize("path", _committed_notebooks(), ids=lambda p: p.stem)
def test_notebook_is_committed_stripped(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.relative_to(REPO)}: cells {dirty} keep outputs or execution counts; strip them"
