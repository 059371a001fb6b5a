"""The champion / challenger / previous-champion alias policy against an in-memory registry.

``MemoryRegistry`` stands in for one MLflow registered model: numbered versions and an
``{alias: version}`` dict, with MLflow's rule that an alias names one version at a time.
Each round registers a new version, decides with :func:`decide` (the real gates and
comparison) and moves the aliases with :func:`alias_moves`, as ``steps/promote_model.py``
does with the MLflow registry.
"""

from __future__ import annotations

import pytest

from components.evaluation.promotion import PromotionConfig, decide
from components.registry import alias_moves
from components.tracking import CHALLENGER, CHAMPION, PREVIOUS

CFG = PromotionConfig(
    min_macro_f1=0.8,
    max_int8_f1_drop=0.005,
    max_latency_ms=5.0,
    max_model_bytes=1_000_000,
    min_int8_size_ratio=3.0,
    min_class_recall=0.3,
    tolerance=0.01,
)


class MemoryRegistry:
    """One registered model in memory: versions "1", "2", ... with their macro-F1, and aliases."""

    def __init__(self) -> None:
        self.f1: dict[str, float] = {}
        self.aliases: dict[str, str] = {}

    def register(self, macro_f1: float) -> str:
        version = str(len(self.f1) + 1)
        self.f1[version] = macro_f1
        return version

    def set_alias(self, alias: str, version: str) -> None:
        assert version in self.f1, f"alias {alias!r} set on unknown version {version}"
        self.aliases[alias] = version

    def promote(self, macro_f1: float, int8_drop: float = 0.001) -> tuple[str, str]:
        """Register a candidate, decide against the champion, move the aliases: (version, outcome)."""
        champion = self.aliases.get(CHAMPION)
        candidate = {
            "macro_f1": macro_f1,
            "int8_macro_f1": macro_f1 - int8_drop,
            "per_class_recall": [0.9, 0.9, 0.9],
            "latency_ms_p50": 1.0,
            "model_bytes": 200_000,
            "int8_size_ratio": 3.5,
        }
        decision = decide(candidate, self.f1[champion] if champion else None, CFG)
        version = self.register(macro_f1)
        for alias, target in alias_moves(decision.outcome, version, dict(self.aliases)).items():
            self.set_alias(alias, target)
        return version, decision.outcome


def test_first_model_becomes_champion_with_no_previous():
    reg = MemoryRegistry()
    assert reg.promote(0.85) == ("1", "champion")
    assert reg.aliases == {CHAMPION: "1"}


def test_winner_takes_champion_and_the_old_champion_becomes_previous():
    reg = MemoryRegistry()
    reg.promote(0.85)
    assert reg.promote(0.90) == ("2", "champion")
    assert reg.aliases == {CHAMPION: "2", PREVIOUS: "1"}
    assert reg.promote(0.95) == ("3", "champion")
    assert reg.aliases == {CHAMPION: "3", PREVIOUS: "2"}


def test_challenger_leaves_champion_and_previous_alone():
    reg = MemoryRegistry()
    reg.promote(0.85)
    reg.promote(0.90)
    assert reg.promote(0.82) == ("3", "challenger")
    assert reg.aliases == {CHAMPION: "2", PREVIOUS: "1", CHALLENGER: "3"}


def test_rejected_candidate_moves_nothing():
    reg = MemoryRegistry()
    reg.promote(0.85)
    reg.promote(0.82)
    before = dict(reg.aliases)
    assert reg.promote(0.95, int8_drop=0.05) == ("3", "rejected")  # int8 gate fails
    assert reg.aliases == before == {CHAMPION: "1", CHALLENGER: "2"}


def test_rejected_first_model_leaves_the_registry_without_aliases():
    reg = MemoryRegistry()
    assert reg.promote(0.5) == ("1", "rejected")
    assert reg.aliases == {}


def test_second_challenger_replaces_the_first():
    reg = MemoryRegistry()
    reg.promote(0.90)
    assert reg.promote(0.84)[1] == "challenger"
    assert reg.promote(0.86) == ("3", "challenger")
    assert reg.aliases == {CHAMPION: "1", CHALLENGER: "3"}


def test_winner_leaves_the_challenger_alias_where_it_was():
    reg = MemoryRegistry()
    reg.promote(0.90)
    reg.promote(0.84)
    assert reg.promote(0.93) == ("3", "champion")
    assert reg.aliases == {CHAMPION: "3", PREVIOUS: "1", CHALLENGER: "2"}


def test_previous_is_set_before_champion():
    """Should the step stop between the two calls, the old champion still holds ``champion``."""
    assert list(alias_moves("champion", "7", {CHAMPION: "6"})) == [PREVIOUS, CHAMPION]


def test_unknown_outcome_and_a_champion_promoted_again_are_refused():
    with pytest.raises(ValueError, match="unknown promotion outcome 'promoted'"):
        alias_moves("promoted", "2", {})
    with pytest.raises(ValueError, match="already holds 'champion'"):
        alias_moves("champion", "3", {CHAMPION: "3"})
