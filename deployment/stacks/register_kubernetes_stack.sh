#!/usr/bin/env bash
# Register and activate the ZenML stack `har_k8s`: Kubernetes orchestrator, S3 artifact store,
# remote MLflow tracking, ECR container registry, image builder, the AWS service connector har_aws
# (S3, ECR and optionally EKS through it); and a DVC S3 remote for data/.
#
# Prerequisites: a deployed ZenML server (`zenml login https://zenml.example.org`: pods cannot
# reach the laptop's SQLite store), kubectl access to the cluster, an IAM role for the connector
# (HAR_AWS_ROLE_ARN) and, for `dvc pull` in the step pods, an IRSA service account
# (HAR_STEP_SERVICE_ACCOUNT): see docs/cluster.md. Run from the repository root:
#
#   HAR_S3_URI=s3://my-bucket/cmd-har HAR_REGISTRY_URI=123456789012.dkr.ecr.eu-west-1.amazonaws.com \
#   HAR_MLFLOW_URI=https://mlflow.example.org HAR_MLFLOW_USERNAME=cmd-har HAR_KUBE_CONTEXT=my-cluster \
#   HAR_AWS_ROLE_ARN=arn:aws:iam::123456789012:role/cmd-har-zenml HAR_STEP_SERVICE_ACCOUNT=cmd-har-steps \
#     deployment/stacks/register_kubernetes_stack.sh
#
# HAR_MLFLOW_PASSWORD must be set too (export it from a password manager; the username and it are
# required for an http(s) tracking server).
# Optional: HAR_KUBE_NAMESPACE (zenml), HAR_STACK (har_k8s),
# HAR_IMAGE_BUILDER (local|kaniko), DRY_RUN=1 (print the commands only);
# AWS: HAR_AWS_AUTH (implicit|iam-role|none, default implicit), HAR_AWS_ROLE_ARN,
# HAR_AWS_ACCESS_KEY_ID/HAR_AWS_SECRET_ACCESS_KEY (iam-role only), HAR_AWS_VERIFY (1|0),
# HAR_EKS_CLUSTER (the orchestrator reaches the cluster through the connector), HAR_AWS_REGION
# (default: the registry's); described at the top of _common.sh.
# HAR_STEP_SERVICE_ACCOUNT: the Kubernetes service account of the step pods (in HAR_KUBE_NAMESPACE),
# annotated for IRSA with a role that can read the bucket: `dvc pull` in the ingest step uses it.
# The MLflow credentials become the ZenML secret har_mlflow, the AWS keys (iam-role) the connector's
# secret, both written through files, never on a command line. Running it again updates what exists
# (connector, components, secret, stack).
cd "$(dirname "$0")/../.."
source deployment/stacks/_common.sh

: "${HAR_KUBE_CONTEXT:?set HAR_KUBE_CONTEXT, a context of your kubeconfig (kubectl config get-contexts)}"
HAR_KUBE_NAMESPACE="${HAR_KUBE_NAMESPACE:-zenml}"
STACK="${HAR_STACK:-har_k8s}"

run zenml integration install kubernetes -y
register_shared_components "$STACK"
orchestrator_options=(--kubernetes_context="$HAR_KUBE_CONTEXT" --kubernetes_namespace="$HAR_KUBE_NAMESPACE")
if [ -n "$HAR_STEP_SERVICE_ACCOUNT" ]; then
  # step pods only: the orchestrator pod keeps ZenML's own zenml-service-account (it creates the pods)
  orchestrator_options+=(--step_pod_service_account_name="$HAR_STEP_SERVICE_ACCOUNT")
fi
register_or_update orchestrator "${STACK}_orchestrator" kubernetes "${orchestrator_options[@]}"
link_orchestrator "${STACK}_orchestrator"
register_or_update_stack "$STACK" -o "${STACK}_orchestrator" -a "${STACK}_s3" -c "${STACK}_registry" \
  -i "${STACK}_builder" -e mlflow_tracker
configure_dvc_remote
echo "stack $STACK is active. Next: har data version --push; har retrain -c configs/cluster.yaml;"
echo "  nightly: zenml pipeline run pipelines.train_pipeline -c configs/schedule.yaml"
