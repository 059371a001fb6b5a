"""ZenML pipelines: wiring only. Import paths for ``zenml pipeline run``:

zenml pipeline run pipelines.train_pipeline -c configs/train.yaml
zenml pipeline run pipelines.data_pipeline -c configs/data.yaml
"""

from pipelines.data_pipeline import data_pipeline
from pipelines.train_pipeline import train_pipeline

__all__ = ["data_pipeline", "train_pipeline"]
