import json
import os
from pathlib import Path

from labkeep.capture._hashcache import CACHE_FILE, HashCache, sha256_file


def _old_file(path: Path, content: bytes) -> os.stat_result:
    path.write_bytes(content)
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    return os.stat(path)


def test_unchanged_files_are_not_read_again(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    st = _old_file(f, b"one")
    cache = HashCache(tmp_path / "cache")
    first = cache.hash_file(str(f), st)
    cache.save()
    assert first == sha256_file(f)

    # Same size and mtime, different content: a cache hit returns the recorded hash,
    # which proves the content was not read.
    st2 = _old_file(f, b"two")
    reloaded = HashCache(tmp_path / "cache")
    assert reloaded.hash_file(str(f), st2) == first
    assert (reloaded.hits, reloaded.misses) == (1, 0)


def test_changed_mtime_or_size_rehashes(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    cache = HashCache(tmp_path / "cache")
    first = cache.hash_file(str(f), _old_file(f, b"one"))
    f.write_bytes(b"three")
    assert cache.hash_file(str(f)) == sha256_file(f) != first
    assert cache.misses == 2


def test_recently_modified_files_are_not_cached(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.txt"
    fresh.write_bytes(b"x")
    old = tmp_path / "old.txt"
    _old_file(old, b"y")
    cache = HashCache(tmp_path / "cache")
    cache.hash_files([(str(fresh), os.stat(fresh)), (str(old), os.stat(old))])
    cache.save()
    entries = json.loads((tmp_path / "cache" / CACHE_FILE).read_text())["entries"]
    assert set(entries) == {str(old)}


def test_parallel_hashing_of_large_files(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        p = tmp_path / f"big{i}.bin"
        p.write_bytes(bytes([i]) * (3 * 1024 * 1024 + 1))
        paths.append(p)
    digests = HashCache(None).hash_files([(str(p), os.stat(p)) for p in paths])
    assert digests == [sha256_file(p) for p in paths]


def test_corrupt_cache_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / CACHE_FILE).write_text("{not json")
    f = tmp_path / "a.txt"
    cache = HashCache(tmp_path / "cache")
    assert cache.hash_file(str(f), _old_file(f, b"z")) == sha256_file(f)
    cache.save()
    assert json.loads((tmp_path / "cache" / CACHE_FILE).read_text())["version"] == 1


def test_no_cache_dir_writes_nothing(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    cache = HashCache(None)
    cache.hash_file(str(f), _old_file(f, b"z"))
    cache.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
