"""Step: validate every recording with Great Expectations; quarantine failures."""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.types import MarkdownString

from components.config import build, data_dir
from components.data.validation import ValidationConfig, markdown_report, validate_dataset


@step(enable_cache=False)  # moves files in data/: must see the current folder every time
def validate_dataset_step(
    import_summary: dict, validation: dict | None = None
) -> tuple[Annotated[dict, "validation_report"], Annotated[MarkdownString, "validation_report_md"]]:
    """Validate ``data/<dataset>/`` and move failing recordings to ``data/quarantine/``.

    Args:
        import_summary: output of the import step (names the dataset).
        validation: :class:`ValidationConfig` fields.

    Returns:
        The machine-readable report and a Markdown version for the dashboard.

    Raises:
        ValidationFailed: more than the allowed share failed (nothing was moved).
    """
    dataset = import_summary["dataset"]
    report = validate_dataset(data_dir() / dataset, build(ValidationConfig, validation))
    failed = [r for r in report.reports if not r.ok]
    md = f"# {dataset}: {report.n_passed}/{report.n_recordings} recordings passed\n\n" + (
        markdown_report(dataset, failed) if failed else "All recordings passed every expectation.\n"
    )
    return report.to_dict(), MarkdownString(md)
