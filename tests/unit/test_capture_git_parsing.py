from labkeep.capture._git import parse_remotes, parse_status, strip_credentials


def test_strip_credentials() -> None:
    assert strip_credentials("https://user:tok@github.com/o/r.git") == "https://github.com/o/r.git"
    assert strip_credentials("https://ghp_abc@github.com/o/r") == "https://github.com/o/r"
    assert strip_credentials("https://github.com/o/r.git") == "https://github.com/o/r.git"
    assert strip_credentials("ssh://git:pw@host:22/r.git") == "ssh://git@host:22/r.git"
    assert strip_credentials("git@github.com:o/r.git") == "git@github.com:o/r.git"
    assert strip_credentials("/srv/repos/r.git") == "/srv/repos/r.git"


def test_parse_remotes() -> None:
    config = """
[core]
    bare = false
[remote "origin"]
    url = "https://github.com/o/r.git" # trailing comment
    fetch = +refs/heads/*:refs/remotes/origin/*
[remote "up stream"]
    url = git@host:up/r.git
    url = git@host:second.git
[branch "main"]
    remote = origin
"""
    assert parse_remotes(config) == {
        "origin": "https://github.com/o/r.git",
        "up stream": "git@host:up/r.git",
    }


def test_parse_status_porcelain_v2() -> None:
    out = b"\0".join(
        [
            b"# branch.oid 1234abcd",
            b"# branch.head main",
            b"# branch.upstream origin/main",
            b"# branch.ab +2 -1",
            b"1 .M N... 100644 100644 100644 aaaa bbbb src/a file.py",
            b"2 R. N... 100644 100644 100644 aaaa aaaa R100 new.py",
            b"old.py",
            b"? notes.md",
            b"",
        ]
    )
    parsed = parse_status(out)
    assert parsed["commit"] == "1234abcd"
    assert parsed["branch"] == "main"
    assert parsed["upstream"] == "origin/main"
    assert (parsed["ahead"], parsed["behind"]) == (2, 1)
    assert parsed["changed"] == ["src/a file.py", "new.py"]
    assert parsed["untracked"] == ["notes.md"]


def test_parse_status_initial_and_detached() -> None:
    parsed = parse_status(b"# branch.oid (initial)\0# branch.head (detached)\0")
    assert parsed["commit"] is None
    assert parsed["branch"] is None
    assert parsed["changed"] == []


def test_parse_ls_files_tags_tracked_and_untracked() -> None:
    from labkeep.capture._git import parse_ls_files

    out = b"H train.py\0S sparse.py\0? notes.md\0? dir/with space.txt\0H train.py\0"
    assert parse_ls_files(out) == {
        "train.py": True,
        "sparse.py": True,
        "notes.md": False,
        "dir/with space.txt": False,
    }


def test_git_state_says_why_the_tree_is_dirty() -> None:
    from labkeep.capture._git import git_state

    assert git_state(0, 0) == "clean"
    assert git_state(2, 0) == "dirty: uncommitted changes"
    assert git_state(0, 1) == "dirty: untracked files"
    assert git_state(1, 1) == "dirty: uncommitted changes and untracked files"
