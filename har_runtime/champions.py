"""Which registered models have a champion in the BentoML store: the default model of
``bentoml serve``, ``bentoml build`` and ``har edge simulate``.

Promotion saves only champions into the store, under the registered-model name, with the
label ``stage=champion`` (``steps/package_model.py``), so the newest model of a name is that
name's champion. One name with champions: that is the model to use. Several: the caller must
choose, and the error lists them. bentoml is imported when a function runs, not on import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

STAGE_LABEL, CHAMPION_STAGE = "stage", "champion"


class ChampionChoiceError(LookupError):
    """The BentoML store holds no champion, or champions of several registered models."""


@dataclass(frozen=True)
class StoredChampion:
    name: str  # the registered model (= BentoML model name)
    tag: str  # the newest champion's BentoML tag
    registered_version: str | None

    def describe(self) -> str:
        version = f"v{self.registered_version}, " if self.registered_version else ""
        return f"{self.name} ({version}{self.tag})"


def bentoml_home() -> str:
    return os.environ.get("BENTOML_HOME", "~/bentoml")


def stored_champions() -> list[StoredChampion]:
    """The newest champion of every registered model in the BentoML store, sorted by name."""
    import bentoml

    newest: dict[str, Any] = {}
    for m in bentoml.models.list():
        if m.info.labels.get(STAGE_LABEL) != CHAMPION_STAGE:
            continue
        seen = newest.get(m.tag.name)
        if seen is None or m.info.creation_time > seen.info.creation_time:
            newest[m.tag.name] = m
    return [
        StoredChampion(name, str(m.tag), m.info.labels.get("registered_version")) for name, m in sorted(newest.items())
    ]


def only_stored_champion(how_to_choose: str, when_none: str) -> StoredChampion:
    """The champion when exactly one registered model has champions in the store.

    Args:
        how_to_choose: what the caller sets to pick one (``{name}`` and ``{tag}`` are filled in
            with the first champion found), shown when there are several.
        when_none: what to do next, shown when there is none.

    Raises:
        ChampionChoiceError: none, or several (the message lists them).
    """
    found = stored_champions()
    if len(found) == 1:
        return found[0]
    if not found:
        raise ChampionChoiceError(
            f"no champion in the BentoML store ({bentoml_home()}): nothing has been promoted to champion yet. "
            + when_none
        )
    listing = "; ".join(c.describe() for c in found)
    choose = how_to_choose.format(name=found[0].name, tag=found[0].tag)
    raise ChampionChoiceError(
        f"{len(found)} registered models have a champion in the BentoML store ({bentoml_home()}): {listing}. "
        f"Choose one: {choose}"
    )
