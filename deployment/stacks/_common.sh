# Shared by register_kubernetes_stack.sh and register_kubeflow_stack.sh (source it, do not run it).
# Registers everything of a cmd-har cluster stack except the orchestrator:
#   S3 artifact store, remote MLflow tracking (+ its secret), container registry, image builder,
#   and the DVC S3 remote for data/ (written to .dvc/config: commit it).
# Running a script again is safe: a component, the secret or the stack that exists is updated in place.
# Secret values never reach a command line or the output: printf (a shell builtin) writes them to a
# temporary file only this user can read, `zenml secret create|update --values=@FILE` reads it, and it
# is removed right after (and on exit).
# DRY_RUN=1 prints the commands for an empty ZenML store instead of running them
# (tests/test_cluster_configs.py uses it).

set -euo pipefail

: "${HAR_S3_URI:?set HAR_S3_URI, e.g. s3://my-bucket/cmd-har (artifacts under /zenml, data under /dvc)}"
: "${HAR_REGISTRY_URI:?set HAR_REGISTRY_URI, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com}"
: "${HAR_MLFLOW_URI:?set HAR_MLFLOW_URI, the remote MLflow tracking server, e.g. https://mlflow.example.org}"
HAR_MLFLOW_USERNAME="${HAR_MLFLOW_USERNAME:-}"
# the password stays in this unexported shell variable: no child process gets it in its environment
mlflow_password="${HAR_MLFLOW_PASSWORD:-}"
unset HAR_MLFLOW_PASSWORD
HAR_AWS_REGION="${HAR_AWS_REGION:-eu-west-1}"
HAR_IMAGE_BUILDER="${HAR_IMAGE_BUILDER:-local}"   # local (needs Docker where you run the pipeline) | kaniko
DRY_RUN="${DRY_RUN:-0}"
MLFLOW_SECRET=har_mlflow   # one secret for the one tracker `mlflow_tracker` that both stacks share

case "$HAR_IMAGE_BUILDER" in
  local) ;;
  kaniko) : "${HAR_KUBE_CONTEXT:?HAR_IMAGE_BUILDER=kaniko: set HAR_KUBE_CONTEXT, the kubeconfig context kaniko builds in}" ;;
  *) echo "HAR_IMAGE_BUILDER must be local or kaniko, not '$HAR_IMAGE_BUILDER'" >&2; exit 1 ;;
esac
if [ -n "$mlflow_password" ] && [ -z "$HAR_MLFLOW_USERNAME" ]; then
  echo "HAR_MLFLOW_PASSWORD is set but HAR_MLFLOW_USERNAME is not: set both, or neither" >&2; exit 1
fi
if [ "$DRY_RUN" = 1 ]; then
  echo "# DRY_RUN=1: the commands for an empty ZenML store; what exists is updated instead (zenml ... update)"
fi

run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  if [ "$DRY_RUN" != 1 ]; then "$@"; fi
}

die() {
  echo "$*" >&2
  exit 1
}

# existing KIND NAME: the flavor of the ZenML KIND (a `zenml` command group: artifact-store, secret,
# stack, ...) named exactly NAME (`describe` also matches a name by its prefix), `-` when KIND has no
# flavor, nothing when there is none (always nothing with DRY_RUN=1).
existing() {
  local kind="$1" name="$2" columns=name,flavor out
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  case "$kind" in stack | secret) columns=name ;; esac
  out="$(zenml "$kind" list --name="$name" --output=tsv --columns="$columns")" \
    || die "could not list the ZenML ${kind}s (is the ZenML server reachable? zenml login ...)"
  awk -F'\t' -v name="$name" '$1 == name { print ($2 == "" ? "-" : $2); exit }' <<<"$out"
}

# register_or_update KIND NAME FLAVOR [--option=value ...]: register the component, or set these
# options on the one of that name and flavor.
register_or_update() {
  local kind="$1" name="$2" flavor="$3" have
  shift 3
  have="$(existing "$kind" "$name")"
  if [ -z "$have" ]; then
    run zenml "$kind" register "$name" --flavor="$flavor" "$@"
  elif [ "$have" != "$flavor" ]; then
    die "$kind $name exists with flavor $have, not $flavor: remove it from its stacks and delete it" \
      "(zenml $kind delete $name), or register under another HAR_STACK"
  elif [ $# -gt 0 ]; then
    run zenml "$kind" update "$name" "$@"
  else
    echo "= $kind $name exists ($flavor)"
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

secret_file=""
remove_secret_file() {
  if [ -n "$secret_file" ]; then rm -f -- "$secret_file"; fi
  secret_file=""
}
trap remove_secret_file EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The MLflow credentials as the ZenML secret $MLFLOW_SECRET (keys username, password), created or updated
# from a JSON file (`zenml secret create|update NAME --values=@FILE` reads JSON or YAML from FILE).
mlflow_secret() {
  local user have
  secret_file="$(umask 077 && mktemp "${TMPDIR:-/tmp}/har_secret.XXXXXXXX")"
  if [ "$DRY_RUN" != 1 ]; then
    json_quote "$HAR_MLFLOW_USERNAME"
    user="$REPLY"
    json_quote "$mlflow_password"
    printf '{"username": %s, "password": %s}\n' "$user" "$REPLY" >"$secret_file"
  fi
  have="$(existing secret "$MLFLOW_SECRET")"
  if [ -z "$have" ]; then
    run zenml secret create "$MLFLOW_SECRET" --values="@$secret_file"
  else
    run zenml secret update "$MLFLOW_SECRET" --values="@$secret_file"
  fi
  remove_secret_file
}

register_shared_components() {
  local prefix="$1"
  run zenml integration install s3 mlflow -y
  register_or_update artifact-store "${prefix}_s3" s3 --path="${HAR_S3_URI%/}/zenml"
  # same component name as the laptop stack, so configs/*.yaml work unchanged on both
  if [ -n "$HAR_MLFLOW_USERNAME" ]; then
    mlflow_secret
    register_or_update experiment-tracker mlflow_tracker mlflow --tracking_uri="$HAR_MLFLOW_URI" \
      --tracking_username="{{$MLFLOW_SECRET.username}}" --tracking_password="{{$MLFLOW_SECRET.password}}"
  else
    register_or_update experiment-tracker mlflow_tracker mlflow --tracking_uri="$HAR_MLFLOW_URI"
  fi
  register_or_update container-registry "${prefix}_registry" default --uri="$HAR_REGISTRY_URI"
  if [ "$HAR_IMAGE_BUILDER" = kaniko ]; then
    # kaniko runs its build pod in that context (namespace: the flavor's default, zenml-kaniko)
    register_or_update image-builder "${prefix}_builder" kaniko --kubernetes_context="$HAR_KUBE_CONTEXT"
  else
    register_or_update image-builder "${prefix}_builder" local
  fi
}

configure_dvc_remote() {
  # data/ versions go to S3 too: `har data ingest` pushes there, the pipeline pod pulls from there
  run .venv/bin/pip install -q -c requirements.lock dvc-s3==3.3.0
  run .venv/bin/dvc remote add --force --default s3 "${HAR_S3_URI%/}/dvc"
  run .venv/bin/dvc remote modify s3 region "$HAR_AWS_REGION"
}
