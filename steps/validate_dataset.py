"""Step: validate every recording with Great Expectations; quarantine failures."""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.config import CachePolicy
from zenml.types import MarkdownString

from components.config import build, data_dir
from components.data.validation import ValidationConfig, markdown_report, validate_dataset
from components.data.versioning import version_data


# Cached on the *value* of data_version + config: an unchanged data version was already
# validated (and any quarantine already applied), so re-running changes nothing.
@step(cache_policy=CachePolicy(include_artifact_ids=False))
def validate_dataset_step(
    dataset: str, data_version: str, validation: dict | None = None
) -> tuple[
    Annotated[str, "validated_data_version"],
    Annotated[dict, "validation_report"],
    Annotated[MarkdownString, "validation_report_md"],
]:
    """Validate ``data/<dataset>/`` and move failing recordings to ``data/quarantine/``.

    Args:
        dataset: dataset folder under ``data/``.
        data_version: the ``data.dvc`` md5 being validated (cache key).
        validation: :class:`ValidationConfig` fields.

    Returns:
        The data version after quarantine (re-versioned only if something moved), the
        machine-readable report, and a Markdown version for the dashboard.

    Raises:
        ValidationFailed: more than the allowed share failed (nothing was moved).
    """
    report = validate_dataset(data_dir() / dataset, build(ValidationConfig, validation))
    failed = [r for r in report.reports if not r.ok]
    validated = version_data() if failed else data_version
    md = f"# {dataset}: {report.n_passed}/{report.n_recordings} recordings passed\n\n" + (
        markdown_report(dataset, failed) if failed else "All recordings passed every expectation.\n"
    )
    return validated, report.to_dict(), MarkdownString(md)
