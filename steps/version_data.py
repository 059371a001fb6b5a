"""Step: record the data version (``dvc add data``) and return its md5."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from components.data.versioning import version_data


@step(enable_cache=False)  # the md5 must reflect data/ as it is now
def version_data_step(validation_report: dict, push: bool = False) -> Annotated[str, "data_version"]:
    """Run ``dvc add data`` (and ``dvc push`` when ``push``); return the ``data.dvc`` md5.

    Args:
        validation_report: output of the validation step (orders this step after it).
        push: push to the default DVC remote.
    """
    version = version_data(push=push)
    log_metadata({"data_version": version, "dataset": validation_report["dataset"]})
    return version
