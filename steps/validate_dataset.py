"""Step: validate every recording of a data version with Great Expectations."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from zenml import step
from zenml.config import CachePolicy
from zenml.types import MarkdownString

from components.config import build
from components.data.validation import ValidationConfig, ValidationFailed, validate_dataset
from components.data.versioning import materialize
from steps.retry import NETWORK_RETRY


# Cached on the *value* of data_version + config: a data version that passed once passes again.
@step(cache_policy=CachePolicy(include_artifact_ids=False), retry=NETWORK_RETRY)
def validate_dataset_step(
    dataset: str, data_version: str, validation: dict | None = None
) -> tuple[
    Annotated[str, "validated_data_version"],
    Annotated[dict, "validation_report"],
    Annotated[MarkdownString, "validation_report_md"],
]:
    """Validate ``dataset`` as it is in ``data_version``; fail if any recording fails.

    The step never changes the data: quarantining makes a new data version, and data
    versions are made on the host (``har data validate DATASET`` then
    ``har data version --push``), never inside a run.

    Args:
        dataset: dataset folder under ``data/``.
        data_version: the ``data.dvc`` md5 to validate (fetched by version when ``data/`` differs).
        validation: :class:`ValidationConfig` fields.

    Returns:
        ``data_version`` (every recording passed), the machine-readable report, and a
        Markdown version for the dashboard.

    Raises:
        ValidationFailed: a recording failed; the message names them and the commands.
    """
    cfg = build(ValidationConfig, validation)
    with materialize(data_version, dataset) as folder:  # every report, however many fail: nothing is moved here
        report = validate_dataset(folder, replace(cfg, max_quarantine_share=1.0), quarantine=False)
    failed = [r for r in report.reports if not r.ok]
    if failed:
        listed = "; ".join(f"{r.recording_id}: {(r.messages() or ['failed'])[0]}" for r in failed[:10])
        more = f" (+{len(failed) - 10} more)" if len(failed) > 10 else ""
        then = "then `har data version --push`, commit data.dvc and run again"
        if report.quarantined_share <= cfg.max_quarantine_share:
            what = f"On the host, `har data validate {dataset}` moves them to data/quarantine/{dataset}/; {then}."
        else:
            what = (
                f"That is more than max_quarantine_share ({cfg.max_quarantine_share:.0%}), so `har data validate "
                f"{dataset}` would move nothing: fix the recordings or their import on the host, {then}."
            )
        raise ValidationFailed(
            f"{dataset} at data version {data_version}: {len(failed)}/{report.n_recordings} recordings failed "
            f"validation: {listed}{more}. {what}"
        )
    md = f"# {dataset}: {report.n_passed}/{report.n_recordings} recordings passed\n\nAll passed every expectation.\n"
    return data_version, report.to_dict(), MarkdownString(md)
