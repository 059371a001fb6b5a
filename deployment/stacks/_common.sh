# Shared by register_kubernetes_stack.sh and register_kubeflow_stack.sh (source it, do not run it).
# Registers everything of a cmd-har cluster stack except the orchestrator:
#   S3 artifact store, remote MLflow tracking (+ its secret), container registry, image builder,
#   and the DVC S3 remote for data/ (written to .dvc/config: commit it).
# DRY_RUN=1 prints the commands instead of running them (tests/test_cluster_configs.py uses it).

set -euo pipefail

: "${HAR_S3_URI:?set HAR_S3_URI, e.g. s3://my-bucket/cmd-har (artifacts under /zenml, data under /dvc)}"
: "${HAR_REGISTRY_URI:?set HAR_REGISTRY_URI, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com}"
: "${HAR_MLFLOW_URI:?set HAR_MLFLOW_URI, the remote MLflow tracking server, e.g. https://mlflow.example.org}"
HAR_MLFLOW_USERNAME="${HAR_MLFLOW_USERNAME:-}"
HAR_MLFLOW_PASSWORD="${HAR_MLFLOW_PASSWORD:-}"
HAR_AWS_REGION="${HAR_AWS_REGION:-eu-west-1}"
HAR_IMAGE_BUILDER="${HAR_IMAGE_BUILDER:-local}"   # local (needs Docker where you run the pipeline) | kaniko
DRY_RUN="${DRY_RUN:-0}"

run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  if [ "$DRY_RUN" != 1 ]; then "$@"; fi
}

register_shared_components() {
  local prefix="$1"
  run zenml integration install s3 mlflow -y
  run zenml artifact-store register "${prefix}_s3" --flavor=s3 --path="${HAR_S3_URI%/}/zenml"
  if [ -n "$HAR_MLFLOW_USERNAME" ]; then
    run zenml secret create "${prefix}_mlflow" --username="$HAR_MLFLOW_USERNAME" --password="$HAR_MLFLOW_PASSWORD"
    # same component name as the laptop stack, so configs/*.yaml work unchanged on both
    run zenml experiment-tracker register mlflow_tracker --flavor=mlflow --tracking_uri="$HAR_MLFLOW_URI" \
      --tracking_username="{{${prefix}_mlflow.username}}" --tracking_password="{{${prefix}_mlflow.password}}"
  else
    run zenml experiment-tracker register mlflow_tracker --flavor=mlflow --tracking_uri="$HAR_MLFLOW_URI"
  fi
  run zenml container-registry register "${prefix}_registry" --flavor=default --uri="$HAR_REGISTRY_URI"
  run zenml image-builder register "${prefix}_builder" --flavor="$HAR_IMAGE_BUILDER"
}

configure_dvc_remote() {
  # data/ versions go to S3 too: `har data ingest` pushes there, the pipeline pod pulls from there
  run .venv/bin/pip install -q -c requirements.lock dvc-s3==3.3.0
  run .venv/bin/dvc remote add --force --default s3 "${HAR_S3_URI%/}/dvc"
  run .venv/bin/dvc remote modify s3 region "$HAR_AWS_REGION"
}
