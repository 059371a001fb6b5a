"""Step retries for the steps that fetch data over the network (DVC remote, artifact store).

They are idempotent: a retry fetches the same data version again. Steps that register or
train are not retried here (a retry would register twice or train twice); MLflow's client
already retries each HTTP request (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``).
"""

from zenml.config.retry_config import StepRetryConfig

NETWORK_RETRY = StepRetryConfig(max_retries=2, delay=10, backoff=2)  # waits 10 s, then 20 s
