"""Training: the trainer (AdamW, early stopping, history) and OGM-GE gradient modulation."""

from components.training.modulation import ModulationResult, ogm_ge
from components.training.trainer import TrainConfig, TrainResult, evaluate, predict, train_model

__all__ = ["ModulationResult", "TrainConfig", "TrainResult", "evaluate", "ogm_ge", "predict", "train_model"]
