"""The current champion's score on *this* test split of *this* data version.

If the champion was evaluated on the same data version and test subjects, its
recorded ``test_macro_f1`` is used; otherwise its exported fp32 ONNX (which carries
its own standardisation) is downloaded and re-evaluated on the current test windows,
provided its channels and window length match.
"""

from __future__ import annotations

import json
from typing import Any

from components import tracking
from components.data.splitting import SplitWindows
from components.export.onnx_export import onnx_logits
from components.metrics import classification_metrics


def champion_macro_f1(
    registered_model: str, split: SplitWindows, candidate_run_id: str | None = None
) -> tuple[Any | None, float | None, str]:
    """(champion model version or None, its macro-F1 on this split or None, explanation).

    ``candidate_run_id``: the candidate's training run; when the champion was registered
    from that same run (ZenML cached the training step), the explanation says so.
    """
    champion = tracking.alias_version(registered_model, tracking.CHAMPION)
    if champion is None:
        return None, None, "no champion yet"
    same_run = (
        f" (trained in the same MLflow run {champion.run_id} as this candidate: training was cached)"
        if candidate_run_id and champion.run_id == candidate_run_id
        else ""
    )
    run = tracking.client().get_run(champion.run_id)
    tags, metrics = run.data.tags, run.data.metrics
    data_version = str(split.provenance.get("data_version"))
    same = tags.get("data_version") == data_version and tags.get("test_subjects") == ",".join(split.fold.test)
    if same and "test_macro_f1" in metrics:
        return (
            champion,
            float(metrics["test_macro_f1"]),
            f"champion v{champion.version}: recorded test macro-F1 on the same data version and test subjects"
            + same_run,
        )
    folder = tracking.download_artifacts(champion.run_id, "exported")
    pre = json.loads((folder / "preprocessing.json").read_text())
    if pre["channel_names"] != split.test.channel_names or pre["window_len"] != split.test.window_len:
        return (
            champion,
            None,
            (f"champion v{champion.version} takes different input (channels/window); it cannot be compared"),
        )
    pred = onnx_logits(folder / "model.onnx", split.test.x).argmax(1)
    f1 = classification_metrics(split.test.y, pred, split.test.n_classes)["macro_f1"]
    return (
        champion,
        float(f1),
        (
            f"champion v{champion.version}: re-evaluated on data version {data_version} "
            f"(it was trained on {tags.get('data_version')})"
        ),
    )


def champion_reference(registered_model: str, champion: Any | None, split: SplitWindows) -> tuple[float | None, bool]:
    """(best test macro-F1 any champion recorded on this data version and test subjects or
    None, whether ``champion`` was trained on this data version).

    A version counts as a champion when the promotion tagged it so; its recorded
    ``test_macro_f1`` counts only on the same data version and test subjects.
    """
    if champion is None:
        return None, False
    client = tracking.client()
    data_version, test = str(split.provenance.get("data_version")), ",".join(split.fold.test)
    best, same_data = None, False
    for mv in client.search_model_versions(f"name='{registered_model}'"):
        is_current = str(mv.version) == str(champion.version)
        if not is_current and (mv.tags or {}).get("promotion_outcome") != "champion":
            continue
        try:
            run = client.get_run(mv.run_id)
        except Exception:  # noqa: BLE001 - a deleted run has no record to count
            continue
        tags, metrics = run.data.tags, run.data.metrics
        if is_current:
            same_data = tags.get("data_version") == data_version
        same_split = tags.get("data_version") == data_version and tags.get("test_subjects") == test
        if same_split and "test_macro_f1" in metrics:
            best = max(best if best is not None else -1.0, float(metrics["test_macro_f1"]))
    return best, same_data
