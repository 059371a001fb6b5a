#!/usr/bin/env bash
# Register and activate the ZenML stack `har_kfp`: Kubeflow Pipelines orchestrator, S3 artifact
# store, remote MLflow tracking, ECR container registry, image builder, the AWS service connector
# har_aws; and a DVC S3 remote for data/.
#
# Prerequisites as for register_kubernetes_stack.sh, plus Kubeflow Pipelines on the cluster.
#
#   HAR_S3_URI=s3://my-bucket/cmd-har HAR_REGISTRY_URI=123456789012.dkr.ecr.eu-west-1.amazonaws.com \
#   HAR_MLFLOW_URI=https://mlflow.example.org HAR_MLFLOW_USERNAME=cmd-har HAR_KUBE_CONTEXT=my-cluster \
#     deployment/stacks/register_kubeflow_stack.sh
#
# HAR_MLFLOW_PASSWORD must be set too (export it from a password manager; the username and it are
# required for an http(s) tracking server).
# Optional: HAR_KUBEFLOW_HOST (the KFP API, e.g. https://kubeflow.example.org/pipeline; default:
# reached through HAR_KUBE_CONTEXT), HAR_KUBEFLOW_NAMESPACE (kubeflow), HAR_STACK (har_kfp),
# HAR_IMAGE_BUILDER, DRY_RUN=1, and the AWS settings (HAR_AWS_AUTH,
# HAR_AWS_ROLE_ARN, ...) described at the top of _common.sh.
# Not HAR_STEP_SERVICE_ACCOUNT: Kubeflow Pipelines 2.x runs every step under the service account of
# its namespace (default-editor in a Kubeflow profile, pipeline-runner in standalone KFP); annotate
# that one for IRSA so that `dvc pull` in the ingest step can read the bucket (docs/cluster.md).
# Shares the tracker mlflow_tracker, its secret har_mlflow and the connector har_aws with the
# Kubernetes stack (updated, not registered twice). Running it again updates what exists.
cd "$(dirname "$0")/../.."
source deployment/stacks/_common.sh

if [ -n "$HAR_STEP_SERVICE_ACCOUNT" ]; then
  die "HAR_STEP_SERVICE_ACCOUNT is for the Kubernetes stack: Kubeflow Pipelines 2.x runs steps under" \
    "its namespace's service account (default-editor / pipeline-runner); annotate that one for IRSA"
fi

: "${HAR_KUBE_CONTEXT:?set HAR_KUBE_CONTEXT, a context of your kubeconfig (kubectl config get-contexts)}"
HAR_KUBEFLOW_NAMESPACE="${HAR_KUBEFLOW_NAMESPACE:-kubeflow}"
STACK="${HAR_STACK:-har_kfp}"

run zenml integration install kubeflow -y
register_shared_components "$STACK"
kubeflow_options=(--kubernetes_context="$HAR_KUBE_CONTEXT" --kubeflow_namespace="$HAR_KUBEFLOW_NAMESPACE")
if [ -n "${HAR_KUBEFLOW_HOST:-}" ]; then kubeflow_options+=(--kubeflow_hostname="$HAR_KUBEFLOW_HOST"); fi
register_or_update orchestrator "${STACK}_orchestrator" kubeflow "${kubeflow_options[@]}"
link_orchestrator "${STACK}_orchestrator"
register_or_update_stack "$STACK" -o "${STACK}_orchestrator" -a "${STACK}_s3" -c "${STACK}_registry" \
  -i "${STACK}_builder" -e mlflow_tracker
configure_dvc_remote
echo "stack $STACK is active. Next: har data version --push; har retrain -c configs/cluster.yaml;"
echo "  nightly: zenml pipeline run pipelines.train_pipeline -c configs/schedule.yaml"
