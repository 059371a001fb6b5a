"""Failure hook of every pipeline: one clear summary line, and the stack's alerter when it has one."""

from __future__ import annotations

from zenml import get_step_context
from zenml.client import Client
from zenml.logger import get_logger

from components.retraining.retrain import NothingNewError

logger = get_logger(__name__)
MAX_MESSAGE = 500  # characters of the exception message in the summary


def failure_summary(step: str, run: str, exception: BaseException) -> str:
    """What failed, where, and where to look next (the exception message cut to ``MAX_MESSAGE``)."""
    message = " ".join(str(exception).split())
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " ..."
    if isinstance(exception, NothingNewError):
        return f"cmd-har run {run} stopped at {step}: {message}"
    return (
        f"cmd-har run {run} FAILED in step {step}: {type(exception).__name__}: {message} "
        f"(logs: zenml pipeline runs logs {run} · the champion alias moves only when promote_model_step succeeds)"
    )


def notify_on_failure(exception: BaseException) -> None:
    """ZenML ``on_failure`` hook: log the summary; post it to the stack's alerter unless the
    run only stopped because there was nothing new to train on."""
    context = get_step_context()
    summary = failure_summary(context.step_run.name, context.pipeline_run.name, exception)
    if isinstance(exception, NothingNewError):
        logger.warning(summary)
        return
    logger.error(summary)
    alerter = Client().active_stack.alerter
    if alerter is not None:
        try:
            alerter.post(summary)
        except Exception as e:  # noqa: BLE001 - the run has failed already; do not hide why
            logger.warning("the alerter %s could not post the failure: %s", alerter.name, e)
