"""Where the notebooks leave their numbers and figures: the artefact folder.

Each notebook's last cell saves its key results as JSON, so the test suite
(and anyone curious) can check them without scraping notebook output. The
folder is ``$CHATLAB_ARTIFACTS`` if set, else ``artifacts/`` at the top of
the project (next to ``pyproject.toml``), else ``artifacts/`` in the
current directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def artifacts_dir() -> Path:
    """The artefact folder (created if missing)."""
    configured = os.environ.get("CHATLAB_ARTIFACTS")
    if configured:
        path = Path(configured)
    else:
        project = Path(__file__).resolve().parents[2]
        base = project if (project / "pyproject.toml").exists() else Path.cwd()
        path = base / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_results(name: str, results: dict[str, Any]) -> Path:
    """Write ``results`` as ``<artifacts>/results/<name>.json``; return the path."""
    folder = artifacts_dir() / "results"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True, default=_plain) + "\n")
    return path


def load_results(name: str) -> dict[str, Any]:
    """Read back what ``save_results(name, ...)`` wrote."""
    return json.loads((artifacts_dir() / "results" / f"{name}.json").read_text())


def _plain(value: object) -> object:
    """JSON for the odd non-JSON value: dataclasses as dicts, anything else as its repr."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}  # type: ignore[attr-defined]
    if hasattr(value, "to_dict"):
        return value.to_dict()  # type: ignore[attr-defined]
    return repr(value)
