#!/usr/bin/env bash
# Register and activate the ZenML stack `har_kfp`: Kubeflow Pipelines orchestrator, S3 artifact
# store, remote MLflow tracking, container registry, image builder; and a DVC S3 remote for data/.
#
# Prerequisites as for register_kubernetes_stack.sh, plus Kubeflow Pipelines on the cluster.
#
#   HAR_S3_URI=s3://my-bucket/cmd-har HAR_REGISTRY_URI=123456789012.dkr.ecr.eu-west-1.amazonaws.com \
#   HAR_MLFLOW_URI=https://mlflow.example.org HAR_KUBE_CONTEXT=my-cluster \
#     deployment/stacks/register_kubeflow_stack.sh
#
# Optional: HAR_KUBEFLOW_HOST (the KFP API, e.g. https://kubeflow.example.org/pipeline; default:
# reached through HAR_KUBE_CONTEXT), HAR_KUBEFLOW_NAMESPACE (kubeflow), HAR_STACK (har_kfp),
# HAR_MLFLOW_USERNAME/PASSWORD, HAR_AWS_REGION, HAR_IMAGE_BUILDER, DRY_RUN=1.
# Shares the tracker mlflow_tracker and its secret har_mlflow with the Kubernetes stack (updated, not
# registered twice). Running it again updates what exists.
cd "$(dirname "$0")/../.."
source deployment/stacks/_common.sh

: "${HAR_KUBE_CONTEXT:?set HAR_KUBE_CONTEXT, a context of your kubeconfig (kubectl config get-contexts)}"
HAR_KUBEFLOW_NAMESPACE="${HAR_KUBEFLOW_NAMESPACE:-kubeflow}"
STACK="${HAR_STACK:-har_kfp}"

run zenml integration install kubeflow -y
register_shared_components "$STACK"
kubeflow_options=(--kubernetes_context="$HAR_KUBE_CONTEXT" --kubeflow_namespace="$HAR_KUBEFLOW_NAMESPACE")
if [ -n "${HAR_KUBEFLOW_HOST:-}" ]; then kubeflow_options+=(--kubeflow_hostname="$HAR_KUBEFLOW_HOST"); fi
register_or_update orchestrator "${STACK}_orchestrator" kubeflow "${kubeflow_options[@]}"
register_or_update_stack "$STACK" -o "${STACK}_orchestrator" -a "${STACK}_s3" -c "${STACK}_registry" \
  -i "${STACK}_builder" -e mlflow_tracker
configure_dvc_remote
echo "stack $STACK is active. Next: har data version --push; har retrain -c configs/cluster.yaml;"
echo "  nightly: zenml pipeline run pipelines.train_pipeline -c configs/schedule.yaml"
