# Shared by register_kubernetes_stack.sh and register_kubeflow_stack.sh (source it, do not run it).
# Registers everything of a cmd-har cluster stack except the orchestrator:
#   the AWS service connector har_aws, S3 artifact store and ECR container registry (both linked to
#   har_aws), remote MLflow tracking (+ its secret), image builder, and the DVC S3 remote for data/
#   (written to .dvc/config: commit it).
# Running a script again is safe: a component, the connector, the secret or the stack that exists
# is updated in place.
# Secret values never reach a command line or the output: printf (a shell builtin) writes them to
# temporary files only this user can read, zenml reads them (`zenml secret create|update
# --values=@FILE`, `zenml service-connector register|update --aws_secret_access_key=@FILE`), and
# they are removed right after (and on exit).
# DRY_RUN=1 prints the commands for an empty ZenML store instead of running them
# (tests/integration/test_cluster_configs.py and tests/integration/test_stack_aws.py use it).
#
# AWS credentials (one connector, har_aws, shared by both stacks like mlflow_tracker):
#   HAR_AWS_AUTH=implicit (default): the connector uses the AWS identity of the ZenML server (on EKS:
#     its IRSA / Pod Identity role; the server needs ZENML_ENABLE_IMPLICIT_AUTH_METHODS=true), and
#     assumes HAR_AWS_ROLE_ARN on top when set (recommended). No key is stored anywhere.
#   HAR_AWS_AUTH=iam-role: HAR_AWS_ROLE_ARN is assumed with the keys of an IAM user allowed to assume
#     it, HAR_AWS_ACCESS_KEY_ID + HAR_AWS_SECRET_ACCESS_KEY (stored in ZenML's secret store through
#     files). For a ZenML server outside AWS.
#   HAR_AWS_AUTH=none: no connector; components use whatever AWS credentials the process has
#     (laptop AWS config, node role); an existing link to har_aws is removed.
#   HAR_AWS_VERIFY=0: register the connector and the links without checking AWS access (--no-verify).
#   HAR_EKS_CLUSTER: the EKS cluster name; when set, the orchestrator reaches the cluster through
#     har_aws (kubernetes_context stays set, as the fallback and for kaniko).
#   HAR_AWS_REGION: default the region of HAR_REGISTRY_URI (an ECR registry).
# Step pods do not get the connector's credentials in their environment: `dvc pull` in the ingest
# step uses the pod's own AWS identity (HAR_STEP_SERVICE_ACCOUNT, see docs/cluster.md).

set -euo pipefail

: "${HAR_S3_URI:?set HAR_S3_URI, e.g. s3://my-bucket/cmd-har (artifacts under /zenml, data under /dvc)}"
: "${HAR_REGISTRY_URI:?set HAR_REGISTRY_URI, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com}"
: "${HAR_MLFLOW_URI:?set HAR_MLFLOW_URI, the remote MLflow tracking server, e.g. https://mlflow.example.org}"
HAR_MLFLOW_USERNAME="${HAR_MLFLOW_USERNAME:-}"
# the password stays in this unexported shell variable: no child process gets it in its environment
mlflow_password="${HAR_MLFLOW_PASSWORD:-}"
unset HAR_MLFLOW_PASSWORD
HAR_IMAGE_BUILDER="${HAR_IMAGE_BUILDER:-local}"   # local (needs Docker where you run the pipeline) | kaniko
HAR_AWS_AUTH="${HAR_AWS_AUTH:-implicit}"        # implicit | iam-role | none
HAR_AWS_ROLE_ARN="${HAR_AWS_ROLE_ARN:-}"
HAR_AWS_VERIFY="${HAR_AWS_VERIFY:-1}"
HAR_EKS_CLUSTER="${HAR_EKS_CLUSTER:-}"
HAR_STEP_SERVICE_ACCOUNT="${HAR_STEP_SERVICE_ACCOUNT:-}"
# the keys, like the password, stay in unexported shell variables
aws_access_key_id="${HAR_AWS_ACCESS_KEY_ID:-}"
aws_secret_access_key="${HAR_AWS_SECRET_ACCESS_KEY:-}"
unset HAR_AWS_ACCESS_KEY_ID HAR_AWS_SECRET_ACCESS_KEY
DRY_RUN="${DRY_RUN:-0}"
MLFLOW_SECRET=har_mlflow   # one secret for the one tracker `mlflow_tracker` that both stacks share
AWS_CONNECTOR=har_aws      # one AWS service connector for both stacks

die() {
  echo "$*" >&2
  exit 1
}

case "$HAR_IMAGE_BUILDER" in
  local) ;;
  kaniko) : "${HAR_KUBE_CONTEXT:?HAR_IMAGE_BUILDER=kaniko: set HAR_KUBE_CONTEXT, the kubeconfig context kaniko builds in}" ;;
  *) die "HAR_IMAGE_BUILDER must be local or kaniko, not '$HAR_IMAGE_BUILDER'" ;;
esac
if [ -n "$mlflow_password" ] && [ -z "$HAR_MLFLOW_USERNAME" ]; then
  die "HAR_MLFLOW_PASSWORD is set but HAR_MLFLOW_USERNAME is not: set both, or neither"
fi
case "$HAR_MLFLOW_URI" in
  http://* | https://*)  # ZenML's MLflow tracker refuses a remote server without credentials
    if [ -z "$HAR_MLFLOW_USERNAME" ] || [ -z "$mlflow_password" ]; then
      die "HAR_MLFLOW_URI $HAR_MLFLOW_URI is a remote server: set HAR_MLFLOW_USERNAME and HAR_MLFLOW_PASSWORD" \
        "(ZenML's MLflow tracker needs credentials for a remote tracking URI)"
    fi ;;
esac
# the container registry is of the `aws` flavor (ECR): <account>.dkr.ecr.<region>.amazonaws.com
ecr_pattern='^[0-9]{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$'
[[ "$HAR_REGISTRY_URI" =~ $ecr_pattern ]] \
  || die "HAR_REGISTRY_URI must be an ECR registry, <account>.dkr.ecr.<region>.amazonaws.com (no /path)," \
    "not '$HAR_REGISTRY_URI'"
HAR_AWS_REGION="${HAR_AWS_REGION:-${BASH_REMATCH[1]}}"
if [ "$HAR_AWS_REGION" != "${BASH_REMATCH[1]}" ]; then
  die "HAR_AWS_REGION=$HAR_AWS_REGION but HAR_REGISTRY_URI is in ${BASH_REMATCH[1]}: the connector serves one" \
    "region; unset HAR_AWS_REGION or make them agree"
fi
case "$HAR_AWS_VERIFY" in
  0 | 1) ;;
  *) die "HAR_AWS_VERIFY must be 1 (check AWS access when registering) or 0, not '$HAR_AWS_VERIFY'" ;;
esac
role_pattern='^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$'
if [ -n "$HAR_AWS_ROLE_ARN" ] && ! [[ "$HAR_AWS_ROLE_ARN" =~ $role_pattern ]]; then
  die "HAR_AWS_ROLE_ARN must be an IAM role ARN, arn:aws:iam::<account>:role/<name>, not '$HAR_AWS_ROLE_ARN'"
fi
case "$HAR_AWS_AUTH" in
  implicit)
    if [ -n "$aws_access_key_id$aws_secret_access_key" ]; then
      die "HAR_AWS_ACCESS_KEY_ID/HAR_AWS_SECRET_ACCESS_KEY are only read with HAR_AWS_AUTH=iam-role;" \
        "HAR_AWS_AUTH=implicit uses the ZenML server's own AWS identity: unset them, or choose iam-role"
    fi ;;
  iam-role)
    [ -n "$HAR_AWS_ROLE_ARN" ] || die "HAR_AWS_AUTH=iam-role: set HAR_AWS_ROLE_ARN, the IAM role the connector assumes"
    if [ -z "$aws_access_key_id" ] || [ -z "$aws_secret_access_key" ]; then
      die "HAR_AWS_AUTH=iam-role: set HAR_AWS_ACCESS_KEY_ID and HAR_AWS_SECRET_ACCESS_KEY, the keys of an" \
        "IAM user allowed to assume HAR_AWS_ROLE_ARN (or use HAR_AWS_AUTH=implicit on a ZenML server in AWS)"
    fi ;;
  none)
    if [ -n "$HAR_AWS_ROLE_ARN$aws_access_key_id$aws_secret_access_key$HAR_EKS_CLUSTER" ]; then
      die "HAR_AWS_AUTH=none registers no connector: unset HAR_AWS_ROLE_ARN, HAR_AWS_ACCESS_KEY_ID," \
        "HAR_AWS_SECRET_ACCESS_KEY and HAR_EKS_CLUSTER, or choose implicit or iam-role"
    fi ;;
  *) die "HAR_AWS_AUTH must be implicit, iam-role or none, not '$HAR_AWS_AUTH'" ;;
esac
no_verify=()
if [ "$HAR_AWS_VERIFY" = 0 ]; then no_verify=(--no-verify); fi
if [ "$DRY_RUN" = 1 ]; then
  echo "# DRY_RUN=1: the commands for an empty ZenML store; what exists is updated instead (zenml ... update)"
fi

run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  if [ "$DRY_RUN" != 1 ]; then "$@"; fi
}

# existing KIND NAME: the flavor of the ZenML KIND (a `zenml` command group: artifact-store, secret,
# stack, service-connector, ...) named exactly NAME (`describe` also matches a name by its prefix),
# the type of a service connector, `-` when KIND has neither, nothing when there is none (always
# nothing with DRY_RUN=1).
existing() {
  local kind="$1" name="$2" columns=name,flavor out
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  case "$kind" in
    stack | secret) columns=name ;;
    service-connector) columns=name,type ;;  # the type column reads ":large_orange_diamond: aws"
  esac
  out="$(zenml "$kind" list --name="$name" --output=tsv --columns="$columns")" \
    || die "could not list the ZenML ${kind}s (is the ZenML server reachable? zenml login ...)"
  awk -F'\t' -v name="$name" '$1 == name { n = split($2, w, " "); print (n == 0 ? "-" : w[n]); exit }' <<<"$out"
}

# register_or_update KIND NAME FLAVOR [--option=value ...]: register the component, or set these
# options on the one of that name and flavor. Sets component_existed (1 when it was there).
component_existed=0
register_or_update() {
  local kind="$1" name="$2" flavor="$3" have
  shift 3
  have="$(existing "$kind" "$name")"
  component_existed=0
  if [ -z "$have" ]; then
    run zenml "$kind" register "$name" --flavor="$flavor" "$@"
    return 0
  fi
  component_existed=1
  if [ "$have" != "$flavor" ]; then
    die "$kind $name exists with flavor $have, not $flavor: remove it from its stacks and delete it" \
      "(zenml $kind delete $name), or register under another HAR_STACK"
  elif [ $# -gt 0 ]; then
    run zenml "$kind" update "$name" "$@"
  else
    echo "= $kind $name exists ($flavor)"
  fi
}

# link_aws KIND NAME [--resource-id=ID]: after register_or_update, link the component to the AWS
# connector (its resource: the component's path/uri, or ID); with HAR_AWS_AUTH=none, unlink one that
# existed (its link may come from an earlier run).
link_aws() {
  local kind="$1" name="$2"
  shift 2
  if [ "$HAR_AWS_AUTH" != none ]; then
    run zenml "$kind" connect "$name" --connector="$AWS_CONNECTOR" "$@" "${no_verify[@]}"
  elif [ "$component_existed" = 1 ]; then
    run zenml "$kind" disconnect "$name"
  fi
}

# register_or_update_stack NAME -o ORCHESTRATOR -a ... : register and activate the stack, or point the
# existing one at these components and activate it.
register_or_update_stack() {
  local name="$1" have
  shift
  have="$(existing stack "$name")"
  if [ -z "$have" ]; then
    run zenml stack register "$name" "$@" --set
  else
    run zenml stack update "$name" "$@"
    run zenml stack set "$name"
  fi
}

# json_quote VALUE: REPLY=VALUE as a JSON string (shell builtins only, so VALUE is in no process's argv)
json_quote() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\t'/\\t}"
  s="${s//$'\n'/\\n}"
  s="${s//$'\r'/\\r}"
  case "$s" in *[[:cntrl:]]*) die "a secret value holds a control character other than tab/newline: not supported" ;; esac
  REPLY="\"$s\""
}

secret_files=()
remove_secret_files() {
  if [ ${#secret_files[@]} -gt 0 ]; then rm -f -- "${secret_files[@]}"; fi
  secret_files=()
}
trap remove_secret_files EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# secret_file [VALUE]: REPLY=a new temporary file only this user can read, holding exactly VALUE
# (written by printf, a builtin; nothing is written with DRY_RUN=1). remove_secret_files removes it.
secret_file() {
  REPLY="$(umask 077 && mktemp "${TMPDIR:-/tmp}/har_secret.XXXXXXXX")"
  secret_files+=("$REPLY")
  if [ "$DRY_RUN" != 1 ] && [ $# -gt 0 ]; then printf '%s' "$1" >"$REPLY"; fi
}

# The MLflow credentials as the ZenML secret $MLFLOW_SECRET (keys username, password), created or updated
# from a JSON file (`zenml secret create|update NAME --values=@FILE` reads JSON or YAML from FILE).
mlflow_secret() {
  local user file have
  secret_file
  file="$REPLY"
  if [ "$DRY_RUN" != 1 ]; then
    json_quote "$HAR_MLFLOW_USERNAME"
    user="$REPLY"
    json_quote "$mlflow_password"
    printf '{"username": %s, "password": %s}\n' "$user" "$REPLY" >"$file"
  fi
  have="$(existing secret "$MLFLOW_SECRET")"
  if [ -z "$have" ]; then
    run zenml secret create "$MLFLOW_SECRET" --values="@$file"
  else
    run zenml secret update "$MLFLOW_SECRET" --values="@$file"
  fi
  remove_secret_files
}

# connector_auth: the auth method of the connector $AWS_CONNECTOR (nothing with DRY_RUN=1)
connector_auth() {
  local out
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  out="$(zenml service-connector list --name="$AWS_CONNECTOR" --output=tsv --columns=name,auth_method)" \
    || die "could not list the ZenML service connectors (is the ZenML server reachable? zenml login ...)"
  awk -F'\t' -v name="$AWS_CONNECTOR" '$1 == name { print $2; exit }' <<<"$out"
}

# aws_connector PREFIX: the AWS service connector $AWS_CONNECTOR (type aws, HAR_AWS_AUTH), registered or
# updated; a multi-type connector (S3 buckets, ECR, EKS clusters of HAR_AWS_REGION).
# `zenml service-connector register|update` reads a `--field=@FILE` value from FILE, so the keys travel
# through files. An update drops the fields the chosen auth method does not use (an earlier run's keys
# or role). ZenML changes the auth method only of a connector no component uses: this stack's
# components (PREFIX_s3, PREFIX_registry, PREFIX_orchestrator) are unlinked first and linked again below.
aws_connector() {
  local prefix="$1" have auth kind name options=(--auth-method="$HAR_AWS_AUTH" --region="$HAR_AWS_REGION") drop=()
  if [ -n "$HAR_AWS_ROLE_ARN" ]; then
    options+=(--role_arn="$HAR_AWS_ROLE_ARN")
  else
    drop+=(--remove-attr=role_arn)
  fi
  if [ "$HAR_AWS_AUTH" = iam-role ]; then
    secret_file "$aws_access_key_id"
    options+=(--aws_access_key_id="@$REPLY")
    secret_file "$aws_secret_access_key"
    options+=(--aws_secret_access_key="@$REPLY")
  else
    drop+=(--remove-attr=aws_access_key_id --remove-attr=aws_secret_access_key)
  fi
  have="$(existing service-connector "$AWS_CONNECTOR")"
  if [ -z "$have" ]; then
    run zenml service-connector register "$AWS_CONNECTOR" --type=aws "${options[@]}" "${no_verify[@]}"
  elif [ "$have" != aws ]; then
    die "service connector $AWS_CONNECTOR exists with type $have, not aws: delete it" \
      "(zenml service-connector delete $AWS_CONNECTOR) after disconnecting its components"
  else
    auth="$(connector_auth)"
    if [ "$auth" != "$HAR_AWS_AUTH" ]; then
      echo "= $AWS_CONNECTOR: auth method $auth -> $HAR_AWS_AUTH; unlinking this stack's components first"
      for kind in artifact-store:s3 container-registry:registry orchestrator:orchestrator; do
        name="${prefix}_${kind#*:}"
        if [ -n "$(existing "${kind%%:*}" "$name")" ]; then run zenml "${kind%%:*}" disconnect "$name"; fi
      done
    fi
    run zenml service-connector update "$AWS_CONNECTOR" "${options[@]}" "${drop[@]}" "${no_verify[@]}" \
      || die "could not update $AWS_CONNECTOR (above). If ZenML says components use it: components of another" \
        "stack are still linked to it (zenml service-connector list-resources / zenml stack describe);" \
        "disconnect them (zenml artifact-store disconnect NAME, ...), run this again, then that stack's script"
  fi
  remove_secret_files
}

register_shared_components() {
  local prefix="$1"
  run zenml integration install s3 mlflow -y  # s3 brings boto3 + aws-profile-manager: the aws connector's needs
  if [ "$HAR_AWS_AUTH" != none ]; then aws_connector "$prefix"; fi
  register_or_update artifact-store "${prefix}_s3" s3 --path="${HAR_S3_URI%/}/zenml"
  link_aws artifact-store "${prefix}_s3"
  # same component name as the laptop stack, so configs/*.yaml work unchanged on both
  if [ -n "$HAR_MLFLOW_USERNAME" ]; then
    mlflow_secret
    register_or_update experiment-tracker mlflow_tracker mlflow --tracking_uri="$HAR_MLFLOW_URI" \
      --tracking_username="{{$MLFLOW_SECRET.username}}" --tracking_password="{{$MLFLOW_SECRET.password}}"
  else
    register_or_update experiment-tracker mlflow_tracker mlflow --tracking_uri="$HAR_MLFLOW_URI"
  fi
  # the aws flavor (ECR): with the connector, pushes log in with short-lived ECR tokens from it
  register_or_update container-registry "${prefix}_registry" aws --uri="$HAR_REGISTRY_URI"
  link_aws container-registry "${prefix}_registry"
  if [ "$HAR_IMAGE_BUILDER" = kaniko ]; then
    # kaniko runs its build pod in that context (namespace: the flavor's default, zenml-kaniko)
    register_or_update image-builder "${prefix}_builder" kaniko --kubernetes_context="$HAR_KUBE_CONTEXT"
  else
    register_or_update image-builder "${prefix}_builder" local
  fi
}

# link_orchestrator NAME: after register_or_update of the orchestrator, reach HAR_EKS_CLUSTER through
# the connector, or (HAR_EKS_CLUSTER unset) unlink one that existed and use kubernetes_context.
link_orchestrator() {
  if [ -n "$HAR_EKS_CLUSTER" ]; then
    link_aws orchestrator "$1" --resource-id="$HAR_EKS_CLUSTER"
  elif [ "$component_existed" = 1 ]; then
    run zenml orchestrator disconnect "$1"
  fi
}

configure_dvc_remote() {
  # data/ versions go to S3 too: `har data ingest` pushes there, the pipeline pod pulls from there
  run .venv/bin/pip install -q -c requirements.lock dvc-s3==3.3.0
  run .venv/bin/dvc remote add --force --default s3 "${HAR_S3_URI%/}/dvc"
  run .venv/bin/dvc remote modify s3 region "$HAR_AWS_REGION"
}
