import nbformat

from labkeep.repro import requirements_text
from labkeep.repro._diff import (
    diff_manifests,
    diff_mappings,
    notebook_diff_text,
    output_diff,
    unified_text_diff,
)
from labkeep.repro._source import ManifestEntry


def test_diff_mappings_states() -> None:
    rows = diff_mappings({"lr": 0.1, "bs": 32, "opt": [1, 2]}, {"lr": 0.2, "bs": 32, "new": None})
    assert [(r.key, r.state) for r in rows] == [
        ("bs", "same"),
        ("lr", "changed"),
        ("new", "added"),
        ("opt", "removed"),
    ]
    assert diff_mappings({"x": 1}, {"x": 1.0})[0].state == "changed"  # typed, not stringified


def entry(path: str, sha: str, mode: str = "100644") -> ManifestEntry:
    return ManifestEntry(path, sha * 64, 1, mode)


def test_diff_manifests() -> None:
    a = [entry("a.py", "1"), entry("b.py", "2"), entry("run.sh", "3"), entry("gone.py", "4")]
    b = [
        entry("a.py", "1"),
        entry("b.py", "5"),
        entry("run.sh", "3", "100755"),
        entry("new.py", "6"),
    ]
    code = diff_manifests(a, b)
    assert [x.path for x, _ in code.changed] == ["b.py", "run.sh"]
    assert [e.path for e in code.added] == ["new.py"]
    assert [e.path for e in code.removed] == ["gone.py"]
    assert code.unchanged == 1 and not code.empty
    assert diff_manifests(a, a).empty


def test_unified_text_diff() -> None:
    text = unified_text_diff(b"a\nb\n", b"a\nc\n", "f.py", ("run1", "run2"))
    assert "--- run1/f.py" in text and "-b\n" in text and "+c\n" in text
    assert unified_text_diff(b"x", b"x", "f", ("1", "2")) == ""
    assert "Binary" in unified_text_diff(b"\0\1", b"\0\2", "w.bin", ("1", "2"))
    added = unified_text_diff(None, b"new\n", "n.py", ("run1", "run2"))
    assert "--- /dev/null" in added and "+new" in added
    no_newline = unified_text_diff(b"a", b"b", "f", ("1", "2"))
    assert "\\ No newline at end of file" in no_newline


def test_notebook_diff_is_cell_by_cell() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("y = 2")]
    before = nbformat.writes(nb).encode()
    nb.cells[1].source = "y = 3"
    after = nbformat.writes(nb).encode()
    text = notebook_diff_text(before, after, "nb.ipynb", ("run1", "run2"))
    assert "cell" in text and "y = 2" in text and "y = 3" in text
    assert "x = 1" not in text  # the unchanged cell is not shown
    assert notebook_diff_text(before, before, "nb.ipynb", ("1", "2")) == ""


def test_output_diff() -> None:
    assert output_diff(["a", "b"], ["a", "b"], ("1", "2")) == ""
    assert "-b\n+c" in output_diff(["a", "b"], ["a", "c"], ("1", "2"))


def test_requirements_text() -> None:
    text = requirements_text(
        {"numpy": "2.0.0", "mylib": "0.1", "pkg": "1.0", "local": "3"},
        {
            "mylib": {"url": "file:///src/mylib", "editable": True},
            "pkg": {"url": "https://github.com/x/pkg", "vcs": "git", "commit": "abc"},
            "local": {"url": "file:///tmp/local-3.whl"},
        },
        python_version="3.11.7",
    )
    assert text.splitlines() == [
        "# python 3.11.7",
        "# local==3 (local install from file:///tmp/local-3.whl)",
        "# mylib==0.1 (editable install from file:///src/mylib)",
        "numpy==2.0.0",
        "pkg @ git+https://github.com/x/pkg@abc",
    ]
