#!/usr/bin/env bash
# Register and activate the ZenML stack `har_k8s`: Kubernetes orchestrator, S3 artifact store,
# remote MLflow tracking, container registry, image builder; and a DVC S3 remote for data/.
#
# Prerequisites: a deployed ZenML server (`zenml login https://zenml.example.org`: pods cannot
# reach the laptop's SQLite store), kubectl access to the cluster, AWS credentials for S3 in the
# usual AWS env/config, `docker login` to the registry. Run from the repository root:
#
#   HAR_S3_URI=s3://my-bucket/cmd-har HAR_REGISTRY_URI=123456789012.dkr.ecr.eu-west-1.amazonaws.com \
#   HAR_MLFLOW_URI=https://mlflow.example.org HAR_KUBE_CONTEXT=my-cluster \
#     deployment/stacks/register_kubernetes_stack.sh
#
# Optional: HAR_KUBE_NAMESPACE (zenml), HAR_STACK (har_k8s), HAR_MLFLOW_USERNAME/PASSWORD,
# HAR_AWS_REGION, HAR_IMAGE_BUILDER (local|kaniko), DRY_RUN=1 (print the commands only).
# The MLflow credentials become the ZenML secret har_mlflow, written through a file, never on a
# command line. Running it again updates what exists (components, secret, stack).
cd "$(dirname "$0")/../.."
source deployment/stacks/_common.sh

: "${HAR_KUBE_CONTEXT:?set HAR_KUBE_CONTEXT, a context of your kubeconfig (kubectl config get-contexts)}"
HAR_KUBE_NAMESPACE="${HAR_KUBE_NAMESPACE:-zenml}"
STACK="${HAR_STACK:-har_k8s}"

run zenml integration install kubernetes -y
register_shared_components "$STACK"
register_or_update orchestrator "${STACK}_orchestrator" kubernetes \
  --kubernetes_context="$HAR_KUBE_CONTEXT" --kubernetes_namespace="$HAR_KUBE_NAMESPACE"
register_or_update_stack "$STACK" -o "${STACK}_orchestrator" -a "${STACK}_s3" -c "${STACK}_registry" \
  -i "${STACK}_builder" -e mlflow_tracker
configure_dvc_remote
echo "stack $STACK is active. Next: har data version --push; har retrain -c configs/cluster.yaml;"
echo "  nightly: zenml pipeline run pipelines.train_pipeline -c configs/schedule.yaml"
