"""A live run's snapshot: captured in the background at run start, stored by content hash.

The code files, the code manifest, the package list and the uncommitted diff go to the blob
store (each distinct content once), and the run's snapshot row names them by sha256: a hundred
runs of unchanged code in an unchanged environment add a few hundred bytes each.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.errors import LabkeepError

if TYPE_CHECKING:
    from labkeep.capture import Snapshot
    from labkeep.store._base import Store

_log = logging.getLogger(__name__)
SNAPSHOT_VERSION = 1
CAPTURE_TIMEOUT_S = 60.0


def store_snapshot(store: Store, snap: Snapshot) -> dict[str, Any]:
    """Put the snapshot's large parts into the blob store; return the row to journal."""
    data = snap.to_dict()
    code = dict(data["code"])
    files = code.pop("files", None)
    if files is None:
        files = [f.to_dict() for f in snap.code_files]
    if files:
        files = sorted(files, key=lambda f: f["path"])
        manifest = _json_bytes(files)
        known = _has_blob(store, hashlib.sha256(manifest).hexdigest())
        # A stored manifest means every file it lists is stored (it is written last, and only
        # with files that were): unchanged code costs no per-file work at all.
        if not known:
            for f in snap.code_files:
                try:
                    store.put_blob(Path(f.abspath), sha256=f.sha256)
                except Exception as exc:  # a file vanished or became unreadable since listed
                    code.setdefault("unstored", []).append({"path": f.path, "error": str(exc)})
            if code.get("unstored"):
                lost = {u["path"] for u in code["unstored"]}
                files = [f for f in files if f["path"] not in lost]
                manifest = _json_bytes(files)
        code["manifest"] = store.put_bytes(manifest)[0]
        code["file_count"] = len(files)
    data["code"] = code
    environment = dict(data["environment"])
    packages = environment.pop("packages", None)
    if packages is not None:
        environment["packages_blob"] = _put_json(store, packages)
        environment["package_count"] = len(packages)
    data["environment"] = environment
    git = dict(data["git"])
    diff = git.pop("diff", None)
    if diff:
        git["diff_blob"] = store.put_bytes(diff.encode())[0]
    data["git"] = git
    data["version"] = SNAPSHOT_VERSION
    return data


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _put_json(store: Store, value: Any) -> str:
    return store.put_bytes(_json_bytes(value))[0]


def _has_blob(store: Store, sha256: str) -> bool:
    try:
        return store.blob_path(sha256).is_file()
    except LabkeepError:
        return False


def load_json_blob(store: Store, sha256: str) -> Any:
    return json.loads(store.blob_path(sha256).read_bytes())


class SnapshotRecorder:
    """Captures a run's snapshot on a thread, then keeps it current as inputs and seeds are
    added, journalling the whole (small) snapshot each time it changes."""

    def __init__(
        self,
        store: Store,
        write: Callable[[dict[str, Any]], None],
        *,
        cwd: Path,
        argv: list[str],
        entry_point: str | None,
        cache_dir: Path,
        code: bool = True,
        inputs: list[str] | None = None,
    ) -> None:
        self._store = store
        self._write = write
        self._cwd = cwd
        self._argv = argv
        self._entry_point = entry_point
        self._cache_dir = cache_dir
        self._code = code
        self._lock = threading.Lock()
        self._data: dict[str, Any] | None = None
        self._inputs: list[dict[str, Any]] = []
        self._initial_inputs = list(inputs or ())
        self._seeds: list[dict[str, Any]] = []
        self._extra: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._capture, name="labkeep-capture", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _capture(self) -> None:
        argv = self._argv
        try:
            from labkeep.capture import capture_snapshot

            snap = capture_snapshot(
                self._cwd,
                argv,
                self._entry_point,
                code=self._code,
                inputs=self._initial_inputs,
                cache_dir=self._cache_dir,
            )
            data = store_snapshot(self._store, snap)
        except Exception as exc:  # capture is never fatal to the run
            data = {"version": SNAPSHOT_VERSION, "error": f"{type(exc).__name__}: {exc}"}
            _log.warning("snapshot capture failed (%s); the run goes on", exc)
        with self._lock:
            self._inputs[:0] = data.pop("inputs", [])
            self._data = data
            if self._argv is not argv:  # set_argv() came while the capture ran
                self._set_host_argv(data)
            self._flush()

    def _flush(self) -> None:
        if self._data is None:
            return
        self._write({**self._data, **self._extra, "inputs": self._inputs, "seeds": self._seeds})

    def add_input(self, fingerprint: dict[str, Any]) -> None:
        with self._lock:
            self._inputs = [i for i in self._inputs if i.get("path") != fingerprint.get("path")]
            self._inputs.append(fingerprint)
            self._flush()

    def add_seed(self, seeded: dict[str, Any]) -> None:
        with self._lock:
            self._seeds.append(seeded)
            self._flush()

    def set(self, key: str, value: Any) -> None:
        """Extra top-level facts (the runner's command, flags source, …)."""
        with self._lock:
            self._extra[key] = value
            self._flush()

    def set_argv(self, argv: list[str]) -> None:
        """The command line turned out otherwise than at the start (flags that ``labkeep run``
        injected once the script's parser was known): record this one."""
        with self._lock:
            self._argv = argv
            if self._data is not None:
                self._set_host_argv(self._data)
                self._flush()

    def _set_host_argv(self, data: dict[str, Any]) -> None:
        from labkeep.capture._host import redact_argv

        if isinstance(data.get("host"), dict):
            data["host"] = {**data["host"], "argv": redact_argv(self._argv)}

    def join(self, timeout: float = CAPTURE_TIMEOUT_S) -> bool:
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()
