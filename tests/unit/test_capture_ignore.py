from labkeep.capture import IgnoreRules


def test_plain_name_matches_at_any_depth() -> None:
    rules = IgnoreRules.parse("*.ckpt\nlogs\n")
    assert rules.is_ignored("model.ckpt")
    assert rules.is_ignored("a/b/model.ckpt")
    assert rules.is_ignored("x/logs/run.txt")
    assert not rules.is_ignored("model.py")


def test_slash_anchors_to_root() -> None:
    rules = IgnoreRules.parse("/top.txt\ndata/raw\n")
    assert rules.is_ignored("top.txt")
    assert not rules.is_ignored("sub/top.txt")
    assert rules.is_ignored("data/raw/x.csv")
    assert not rules.is_ignored("other/data/raw/x.csv")


def test_trailing_slash_matches_directories_only() -> None:
    rules = IgnoreRules.parse("data/\n")
    assert rules.is_ignored("data/x.csv")
    assert rules.is_ignored("data", is_dir=True)
    assert not rules.is_ignored("data")


def test_negation_last_match_wins() -> None:
    rules = IgnoreRules.parse("*.ckpt\n!keep.ckpt\n")
    assert rules.is_ignored("a.ckpt")
    assert not rules.is_ignored("keep.ckpt")
    assert rules.match("keep.ckpt") is False
    assert rules.match("other.py") is None


def test_double_star_forms() -> None:
    rules = IgnoreRules.parse("**/cache\na/**/z.py\nout/**\n")
    assert rules.is_ignored("cache", is_dir=True)
    assert rules.is_ignored("x/y/cache/f.py")
    assert rules.is_ignored("a/z.py")
    assert rules.is_ignored("a/b/c/z.py")
    assert rules.is_ignored("out/deep/file.py")
    assert not rules.is_ignored("out", is_dir=True)


def test_star_does_not_cross_directories() -> None:
    rules = IgnoreRules.parse("src/*.py\n")
    assert rules.is_ignored("src/a.py")
    assert not rules.is_ignored("src/sub/a.py")


def test_character_class_comments_and_escapes() -> None:
    rules = IgnoreRules.parse("# a comment\n[ab].md\n\\#literal\n\\!bang\n")
    assert rules.is_ignored("a.md")
    assert not rules.is_ignored("c.md")
    assert rules.is_ignored("#literal")
    assert rules.is_ignored("!bang")
    assert not rules.is_ignored("# a comment")


def test_empty_rules_ignore_nothing() -> None:
    rules = IgnoreRules.parse("\n# only comments\n")
    assert not rules
    assert not rules.is_ignored("anything.py")
