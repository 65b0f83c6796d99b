"""What the UI shows of files: media types, syntax-highlighted code as tokens (Pygments, on
the server: no CDN), and executed notebooks rendered to HTML (nbconvert, imported lazily).

Highlighted code travels as ``[css class, text]`` pairs, never as HTML: the browser builds
the spans with ``textContent``, so a file's content cannot become markup.
"""

from __future__ import annotations

import importlib
import mimetypes
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

#: Files larger than this are shown as plain text (tokenizing megabytes is slow and useless).
HIGHLIGHT_LIMIT = 512 * 1024

_TEXT_SUFFIXES = {
    ".py": "text/x-python",
    ".pyi": "text/x-python",
    ".ipynb": "application/x-ipynb+json",
    ".md": "text/markdown",
    ".rst": "text/plain",
    ".log": "text/plain",
    ".txt": "text/plain",
    ".cfg": "text/plain",
    ".ini": "text/plain",
    ".toml": "text/plain",
    ".yaml": "text/yaml",
    ".yml": "text/yaml",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".sh": "text/x-shellscript",
    ".diff": "text/x-diff",
    ".patch": "text/x-diff",
}


def media_type(path: str) -> str:
    """The media type to serve a file as (text types in UTF-8)."""
    suffix = Path(path).suffix.lower()
    kind = _TEXT_SUFFIXES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"
    if kind.startswith("text/") and "charset" not in kind:
        kind += "; charset=utf-8"
    return kind


def preview_kind(path: str) -> str:
    """How the UI previews a file: image, csv, html, notebook, text or none."""
    suffix = Path(path).suffix.lower()
    if suffix in (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp", ".avif"):
        return "image"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".html", ".htm"):
        return "html"
    if suffix == ".ipynb":
        return "notebook"
    kind = media_type(path)
    if kind.startswith("text/") or kind in ("application/json", "application/x-ndjson"):
        return "text"
    return "none"


def decode_text(data: bytes) -> str | None:
    """``data`` as text, or None when it is binary (a NUL byte or invalid UTF-8)."""
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def highlight(text: str, filename: str, language: str | None = None) -> dict[str, Any]:
    """``text`` split into Pygments tokens as ``[css class, text]`` pairs (adjacent tokens of
    one class merged); the class is Pygments' short name (``k``, ``s2``, ``c1``...)."""
    # Pygments ships no type hints: its modules are used as Any.
    lexers: Any = importlib.import_module("pygments.lexers")
    STANDARD_TYPES: dict[Any, str] = importlib.import_module("pygments.token").STANDARD_TYPES
    ClassNotFound: type[Exception] = importlib.import_module("pygments.util").ClassNotFound

    if len(text) > HIGHLIGHT_LIMIT:
        return {"language": "text", "tokens": [["", text]]}
    try:
        if language:
            lexer = lexers.get_lexer_by_name(language, stripnl=False, ensurenl=False)
        else:
            lexer = lexers.get_lexer_for_filename(filename, text, stripnl=False, ensurenl=False)
    except ClassNotFound:
        lexer = lexers.TextLexer(stripnl=False, ensurenl=False)
    tokens: list[list[str]] = []
    for ttype, value in lexer.get_tokens(text):
        kind = ttype
        css = STANDARD_TYPES.get(kind)
        while css is None and kind.parent is not None:
            kind = kind.parent
            css = STANDARD_TYPES.get(kind)
        css = "" if css in (None, "w") else css
        if tokens and tokens[-1][0] == css:
            tokens[-1][1] += value
        else:
            tokens.append([css, value])
    return {"language": lexer.name, "tokens": tokens}


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.IGNORECASE | re.DOTALL)
_notebooks: OrderedDict[str, str] = OrderedDict()
_notebooks_lock = threading.Lock()
_NOTEBOOK_CACHE = 16


def render_notebook(path: Path, cache_key: str) -> str:
    """An executed notebook as a standalone HTML page, without scripts (they would reach
    for CDNs; the page is shown sandboxed and offline). Cached by content hash."""
    from labkeep.errors import InvalidInputError

    with _notebooks_lock:
        if cache_key in _notebooks:
            _notebooks.move_to_end(cache_key)
            return _notebooks[cache_key]
    try:
        nbformat: Any = importlib.import_module("nbformat")
        nbconvert: Any = importlib.import_module("nbconvert")
    except ImportError:
        raise InvalidInputError(
            "rendering notebooks needs nbconvert: pip install 'labkeep[notebook]'"
        ) from None
    try:
        notebook = nbformat.read(str(path), as_version=4)
    except Exception as exc:
        raise InvalidInputError(f"the notebook cannot be read: {exc}") from None
    body, _resources = nbconvert.HTMLExporter(template_name="lab").from_notebook_node(notebook)
    html = _SCRIPT.sub("", body)
    with _notebooks_lock:
        _notebooks[cache_key] = html
        while len(_notebooks) > _NOTEBOOK_CACHE:
            _notebooks.popitem(last=False)
    return html
