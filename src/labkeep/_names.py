"""Friendly run names, derived from the run's uuid and number (``brisk-otter-12``)."""

from __future__ import annotations

_ADJECTIVES = (
    "amber brave brisk calm clever crisp dapper eager fancy gentle glad golden hardy humble jolly "
    "keen lively lucid merry misty nimble noble proud quick quiet rapid rosy rustic shiny silent "
    "sleek smooth snowy solar spry steady sunny swift tidy vivid warm wise witty young zesty bold "
    "cosmic fresh"
)
_NOUNS = (
    "otter falcon maple river comet badger cedar dune ember fjord gecko harbor iris jaguar koala "
    "lagoon lynx meadow nebula oak orchid panda pebble quartz raven sparrow spruce tiger tundra "
    "valley walrus willow yak zephyr heron lotus marten moth puffin reef sage swan thistle"
)
ADJECTIVES = tuple(_ADJECTIVES.split(" "))
NOUNS = tuple(_NOUNS.split(" "))


def run_name(uuid: str, number: int) -> str:
    """>>> run_name("00000000-0000-0000-0000-000000000000", 7)
    'amber-otter-7'
    """
    seed = int(uuid.replace("-", "")[:8] or "0", 16)
    return f"{ADJECTIVES[seed % len(ADJECTIVES)]}-{NOUNS[(seed // 97) % len(NOUNS)]}-{number}"
