"""ZenML pipelines: wiring only. Import path for ``zenml pipeline run``:

zenml pipeline run pipelines.data_pipeline -c configs/data.yaml
"""

from pipelines.data_pipeline import data_pipeline

__all__ = ["data_pipeline"]
