"""Retraining on new data: the data lock, the champion's data version, what changed, schedules."""
