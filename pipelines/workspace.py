"""A self-contained DVC workspace for one run of the loop (the demo, tests): the project's dvc.yaml, its
params.yaml with a profile applied, links to the code, and `dvc init`. The project's own files stay untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

CODE = ("features", "routers", "registry", "serving", "pipelines")
DVC_ENV = {"DVC_NO_ANALYTICS": "1"}
IMPORT_STAGE = "import"
LABEL_STAGE = "label"
PUBLIC_DATA = "${data.out_dir}"


class PipelineError(RuntimeError):
    """A `dvc` command failed; the message holds the end of its output."""


def profile_params(params: Mapping[str, Any], profile: Mapping[str, Any]) -> dict[str, Any]:
    """params.yaml with a profile applied: `families`, `trials` (every family), and any `loop` keys."""
    result = {k: dict(v) if isinstance(v, dict) else v for k, v in params.items()}
    loop = result.setdefault("loop", {})
    for key, value in profile.items():
        if key == "trials":
            for family, section in result.get("tune", {}).items():
                if isinstance(section, dict):
                    result["tune"][family] = {**section, "trials": value}
        elif key in loop or key == "families":
            loop[key] = value
    return result


def prepare(root: Path, repo: Path, profile: Mapping[str, Any]) -> Path:
    """Create `root` as a DVC workspace running the project's pipeline with `profile`; returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    params = profile_params(yaml.safe_load((repo / "params.yaml").read_text()), profile)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())
    if not params["loop"].get("bootstrap"):
        _without_public_data(pipeline)
    (root / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    for name in CODE:
        link = root / name
        if not link.exists():
            link.symlink_to(repo / name, target_is_directory=True)
    if not (root / ".dvc").is_dir():
        dvc(root, ["init", "--no-scm", "--quiet"])
        dvc(root, ["config", "core.autostage", "false"])
    return root


def _without_public_data(pipeline: dict[str, Any]) -> None:
    """The loop on traffic alone: no public-data import stages, no label dependency on their outputs."""
    stages = pipeline["stages"]
    stages.pop(IMPORT_STAGE, None)
    label = stages[LABEL_STAGE]
    label["deps"] = [d for d in label["deps"] if not str(d).startswith(PUBLIC_DATA)]


def dvc(root: Path, arguments: list[str], echo: Callable[[str], None] | None = None) -> str:
    """Run `dvc <arguments>` in `root` with this interpreter's environment; stream lines to `echo`."""
    exe = Path(sys.executable).with_name("dvc")
    command = [str(exe) if exe.exists() else "dvc", *arguments]
    # Stages run `python -m …`: the interpreter running this code (the project's venv) must be first on PATH.
    env = {**os.environ, **DVC_ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    lines: list[str] = []
    with subprocess.Popen(  # noqa: S603
        command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if echo is not None:
                echo(line.rstrip())
    if process.returncode != 0:
        tail = "\n".join(lines[-30:])
        raise PipelineError(f"dvc {' '.join(arguments)} failed in {root} (exit {process.returncode}):\n{tail}")
    return "\n".join(lines)
