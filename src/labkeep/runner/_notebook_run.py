"""Execute a copy of a notebook top to bottom in a fresh kernel, its outputs streamed live.

The kernel is ipykernel's launcher (``python -m labkeep.runner._kernel``, which installs
the bridges to MLflow, W&B, TensorBoard and Sacred first) of this very interpreter (a kernelspec written
to labkeep's cache, so a user-level ``python3`` kernelspec pointing at another Python cannot
interfere), started in the run's working directory with the run's environment, so a
``labkeep.init()`` in the notebook attaches to the run. nbformat, nbclient, nbconvert and
ipykernel (the ``notebook`` extra) are imported only here, and only when a notebook runs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkeep.errors import InvalidInputError

KERNEL_NAME = "labkeep-python3"
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/svg+xml": "svg"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

TextCallback = Callable[[str, str], None]
"""Receives ``(stream, text)`` for each stream output of a cell, as the kernel sends it."""


@dataclass
class NotebookOutcome:
    """What executing a notebook left: the executed copy, its HTML, the images in its outputs
    (``(artifact name, file)``), and the failing cell's traceback, if one failed."""

    executed: Path
    html: Path | None = None
    images: list[tuple[str, Path]] = field(default_factory=list)
    error: str | None = None
    interrupted: bool = False
    kernel_log: Path | None = None


def check_notebook_support() -> None:
    """Raise a one-line error when the ``notebook`` extra is not installed."""
    import importlib.util

    missing = [
        name
        for name in ("nbformat", "nbclient", "nbconvert", "ipykernel")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise InvalidInputError(
            f"running notebooks needs {', '.join(missing)}: pip install 'labkeep[notebook]'"
        )


def kernel_spec_dir(cache_dir: Path) -> Path:
    """A kernelspec directory whose ``labkeep-python3`` kernel is this interpreter."""
    spec_dir = cache_dir / "kernels"
    kernel = spec_dir / KERNEL_NAME
    spec = {
        "argv": [sys.executable, "-m", "labkeep.runner._kernel", "-f", "{connection_file}"],
        "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} (labkeep)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    text = json.dumps(spec, indent=1)
    path = kernel / "kernel.json"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        kernel.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return spec_dir


def execute_notebook(
    notebook: Path,
    workdir: Path,
    *,
    cwd: Path,
    env: Mapping[str, str],
    kernel_dir: Path,
    on_text: TextCallback,
    timeout: float | None = None,
) -> NotebookOutcome:
    """Execute ``notebook`` (already a per-run copy) in ``cwd``; write the executed notebook,
    its HTML export and output images under ``workdir``.

    Ctrl-C or SIGTERM while it runs stops the kernel and sets ``interrupted``.
    """
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    class _LiveClient(NotebookClient):
        def output(
            self,
            outs: list[Any],
            msg: dict[str, Any],
            display_id: str | None,
            cell_index: int,
        ) -> Any:
            if msg.get("msg_type") == "stream":
                content = msg.get("content", {})
                on_text(str(content.get("name", "stdout")), str(content.get("text", "")))
            return super().output(outs, msg, display_id, cell_index)

    nb = nbformat.read(str(notebook), as_version=4)  # type: ignore[no-untyped-call]
    km = AsyncKernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]),
    )
    client = _LiveClient(
        nb,
        km=km,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(cwd)}},
        record_timing=True,
    )
    outcome = NotebookOutcome(executed=workdir / notebook.name)
    previous = signal.getsignal(signal.SIGTERM)
    with contextlib.suppress(ValueError):  # not the main thread: SIGTERM keeps its effect
        signal.signal(signal.SIGTERM, _raise_interrupt)
    workdir.mkdir(parents=True, exist_ok=True)
    # The kernel's own chatter (not the cells' output, which arrives as messages) goes to a
    # log file, kept with a failed run.
    outcome.kernel_log = workdir / "kernel.log"
    log = open(outcome.kernel_log, "wb")  # noqa: SIM115 - closed in finally
    try:
        client.execute(env=dict(env), stdout=log, stderr=log)
    except CellExecutionError as exc:
        outcome.error = _ANSI.sub("", str(exc)).strip()
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)
        _kill_kernel(km)
        log.close()
    nbformat.write(client.nb, str(outcome.executed))  # type: ignore[no-untyped-call]
    outcome.html = _export_html(client.nb, workdir / (notebook.stem + ".html"))
    outcome.images = _write_images(client.nb, workdir / "images")
    return outcome


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _kill_kernel(km: Any) -> None:
    """Make sure the kernel process is gone, whatever state execution ended in."""
    provisioner = getattr(km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        process.kill()
    with contextlib.suppress(Exception):
        process.wait(5)


def _export_html(nb: Any, dest: Path) -> Path | None:
    from nbconvert import HTMLExporter

    try:
        body, _resources = HTMLExporter().from_notebook_node(nb)  # type: ignore[no-untyped-call]
    except Exception:  # a missing template must not fail a run that executed fine
        return None
    dest.write_text(body, encoding="utf-8")
    return dest


def _write_images(nb: Any, directory: Path) -> list[tuple[str, Path]]:
    images: list[tuple[str, Path]] = []
    for index, cell in enumerate(nb.cells):
        for number, output in enumerate(cell.get("outputs", [])):
            data = output.get("data", {})
            for mime, suffix in IMAGE_TYPES.items():
                if mime not in data:
                    continue
                raw = data[mime]
                text = "".join(raw) if isinstance(raw, list) else str(raw)
                content = text.encode() if suffix == "svg" else base64.b64decode(text)
                name = f"cell{index}-output{number}.{suffix}"
                directory.mkdir(parents=True, exist_ok=True)
                (directory / name).write_bytes(content)
                images.append((f"images/{name}", directory / name))
    return images
