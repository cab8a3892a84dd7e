#!/usr/bin/env bash
# Radio on AWS in one command.
#
#   ./deploy.sh [deploy]   create or update both hosts, configure them, smoke-test
#                          (arguments after "deploy" go to ansible-playbook, e.g.
#                          ./deploy.sh deploy -e radio_max_upload_mb=30)
#   ./deploy.sh plan       show what Terraform would change
#   ./deploy.sh status     refresh the state from AWS, print the real URL and /health
#   ./deploy.sh backup     snapshot the data volumes now
#   ./deploy.sh rollback   switch both hosts back to the release that ran before
#   ./deploy.sh destroy    delete everything Terraform created (asks first)
#
# Needs .aws/_credentials with the [awslearnerlab] profile and .aws/key.pem
# (mode 600); see .aws/README.md and the README (Deploy to AWS). Safe to re-run: Terraform
# and the playbooks only change what differs.
#
# Environment:
#   RADIO_ADMIN_CIDR   network allowed to SSH in [your public IP/32, detected once, remembered]
#   RADIO_AWS_PROFILE  profile in .aws/_credentials [awslearnerlab]
#   RADIO_AWS_REGION   AWS region [us-east-1]
#   RADIO_EXISTING_KEY_NAME  use this existing EC2 key pair instead of importing key.pem's
#   RADIO_DOMAIN       DNS name for the HTTPS certificate [<elastic-ip>.sslip.io; remembered]
#   RADIO_MODEL_SERVERS  number of model servers, 1-10 [1; remembered]
#   RADIO_AUTO_APPROVE=1     destroy without asking
#   RADIO_PYTHON       Python with boto3 [.venv/bin/python, else python3]
#   RADIO_DATA         the data sources' folder, placed on the hosts for the jobs (the
#                      promotion gate's val splits, the drift reference's train splits)
#                      [../shared/data beside the project, if present]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
AWS_DIR="$ROOT/.aws"
CREDENTIALS="$AWS_DIR/_credentials"
KEY="$AWS_DIR/key.pem"
STATE_DIR="$ROOT/.deploy"
PROFILE="${RADIO_AWS_PROFILE:-awslearnerlab}"
[[ "$PROFILE" =~ ^[A-Za-z0-9._-]+$ ]] || {
  echo "deploy.sh: error: RADIO_AWS_PROFILE=$PROFILE is not a profile name" >&2
  exit 2
}
[[ "${RADIO_EXISTING_KEY_NAME:-}" =~ ^[A-Za-z0-9._-]*$ ]] || {
  echo "deploy.sh: error: RADIO_EXISTING_KEY_NAME=$RADIO_EXISTING_KEY_NAME is not a key pair name" >&2
  exit 2
}
REGION="${RADIO_AWS_REGION:-us-east-1}"
TFVARS="$STATE_DIR/terraform.tfvars.json"
OUTPUTS="$STATE_DIR/outputs.json"
INVENTORY="$STATE_DIR/inventory.ini"
ARCHIVE="$STATE_DIR/radio-src.tar.gz"
REGISTRY_SECRETS="$STATE_DIR/registry.json"
DATA_ARCHIVE="$STATE_DIR/radio-data.tar.gz"

# The project's virtualenv, where pip install '.[deploy]' puts ansible-playbook.
if [ -d "$ROOT/.venv/bin" ]; then PATH="$ROOT/.venv/bin:$PATH"; fi

# Terraform must not phone home, and Ansible's output should stay readable.
export CHECKPOINT_DISABLE=1
export ANSIBLE_ROLES_PATH="$ROOT/roles"
export ANSIBLE_PIPELINING=True
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-0}"

info() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'deploy.sh: warning: %s\n' "$*" >&2; }
die() {
  printf 'deploy.sh: error: %s\n' "$*" >&2
  exit 1
}

# The registry on the MLflow host: its admin secret and the import of shipped versions.
# shellcheck source-path=SCRIPTDIR source=deploy/mlflow_host.sh
source "$ROOT/deploy/mlflow_host.sh"

usage() {
  sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

python_bin() {
  if [ -n "${RADIO_PYTHON:-}" ]; then
    printf '%s\n' "$RADIO_PYTHON"
  elif [ -x "$ROOT/.venv/bin/python" ]; then
    printf '%s\n' "$ROOT/.venv/bin/python"
  else
    command -v python3 || true
  fi
}

pydeploy() {
  (cd "$ROOT" && "$(python_bin)" -m deploy "$@")
}

# Octal permission bits of a file, on GNU and BSD stat alike.
file_mode() {
  stat -c '%a' "$1" 2>/dev/null || stat -f '%Lp' "$1"
}

# Every missing prerequisite of a subcommand, one line each; nothing runs if any.
preflight() {
  local cmd="$1" py mode
  local -a problems=()

  command -v terraform >/dev/null 2>&1 ||
    problems+=("terraform not found on PATH: install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install)")
  if [ "$cmd" = deploy ]; then
    command -v ansible-playbook >/dev/null 2>&1 ||
      problems+=("ansible-playbook not found on PATH: pip install '.[deploy]' (ansible-core)")
    command -v git >/dev/null 2>&1 ||
      problems+=("git not found on PATH: the release is shipped with git archive")
  fi
  py="$(python_bin)"
  if [ -z "$py" ] || ! command -v "$py" >/dev/null 2>&1; then
    problems+=("python3 not found on PATH (or set RADIO_PYTHON): it runs the deploy helpers")
  elif [ "$cmd" != status ] && ! "$py" -c 'import boto3' >/dev/null 2>&1; then
    problems+=("$py cannot import boto3: pip install '.[deploy]'")
  fi
  if [ "$cmd" != status ]; then
    if [ ! -f "$CREDENTIALS" ]; then
      problems+=(".aws/_credentials not found: copy .aws/_credentials.example and paste the lab's credentials under [$PROFILE]")
    elif ! grep -Eq "^[[:space:]]*\[$PROFILE\][[:space:]]*$" "$CREDENTIALS"; then
      problems+=(".aws/_credentials has no [$PROFILE] profile")
    fi
  fi
  if [ "$cmd" = deploy ] || { [ "$cmd" = plan ] && [ -z "${RADIO_EXISTING_KEY_NAME:-}" ]; }; then
    if [ ! -f "$KEY" ]; then
      problems+=(".aws/key.pem not found: save the SSH private key there (chmod 600 .aws/key.pem)")
    else
      mode="$(file_mode "$KEY")"
      case "$mode" in
        600 | 400) ;;
        *) problems+=(".aws/key.pem has mode $mode; ssh refuses keys others can read: chmod 600 .aws/key.pem") ;;
      esac
    fi
    if [ -z "${RADIO_EXISTING_KEY_NAME:-}" ] && ! command -v ssh-keygen >/dev/null 2>&1; then
      problems+=("ssh-keygen not found on PATH: it derives the key pair's public key from .aws/key.pem")
    fi
  fi

  if [ "${#problems[@]}" -gt 0 ]; then
    printf 'deploy.sh: error: %s\n' "${problems[@]}" >&2
    printf 'deploy.sh: %d problem(s) found; nothing was changed.\n' "${#problems[@]}" >&2
    exit 2
  fi
}

check_credentials() {
  info "Checking AWS credentials (profile $PROFILE)"
  pydeploy credentials --file "$CREDENTIALS" --profile "$PROFILE" --region "$REGION" || exit 1
}

# The admin CIDR is the one thing an operator must decide; remember it so a
# re-run needs no arguments.
admin_cidr() {
  local cidr="${RADIO_ADMIN_CIDR:-}" ip
  if [ -z "$cidr" ] && [ -f "$TFVARS" ]; then
    cidr="$("$(python_bin)" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("admin_cidr", ""))' "$TFVARS")"
  fi
  if [ -z "$cidr" ]; then
    info "RADIO_ADMIN_CIDR not set: asking AWS for this machine's public address"
    ip="$(curl -fsS --max-time 10 https://checkip.amazonaws.com 2>/dev/null | tr -d '[:space:]')" || true
    [[ "$ip" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] ||
      die "cannot find this machine's public IP: set RADIO_ADMIN_CIDR=<your ip>/32"
    cidr="$ip/32"
  fi
  [[ "$cidr" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/([0-9]{1,2})$ ]] ||
    die "RADIO_ADMIN_CIDR=$cidr is not an IPv4 CIDR such as 203.0.113.7/32"
  # By prefix length, as variables.tf checks it: 0.0.0.0/1 is half the internet.
  ((10#${BASH_REMATCH[2]} >= 16 && 10#${BASH_REMATCH[2]} <= 32)) ||
    die "RADIO_ADMIN_CIDR=$cidr is larger than a /16: SSH must stay closed to the internet (use your ip/32)"
  printf '%s\n' "$cidr"
}

# Home and lab networks hand out new addresses: a remembered admin_cidr that no
# longer holds this machine's address makes SSH time out after minutes of
# waiting, so say so up front. Silent when the address cannot be found.
admin_drift_hint() {
  local cidr="$1" ip
  command -v curl >/dev/null 2>&1 || return 0
  ip="$(curl -fsS --max-time 5 https://checkip.amazonaws.com 2>/dev/null | tr -d '[:space:]')" || return 0
  [[ "$ip" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || return 0
  if ! "$(python_bin)" -c 'import ipaddress, sys; sys.exit(ipaddress.ip_address(sys.argv[1]) not in ipaddress.ip_network(sys.argv[2], strict=False))' "$ip" "$cidr"; then
    warn "this machine's public address $ip is outside admin_cidr $cidr (saved in .deploy/terraform.tfvars.json): SSH will time out."
    warn "re-run with RADIO_ADMIN_CIDR=$ip/32 ./deploy.sh to move the SSH rule to your new address."
  fi
}

# A setting from the environment, else the value saved by the last run (so a
# re-run without it never scales the model tier back down or drops the domain).
remembered() {
  local key="$1" value="$2"
  if [ -z "$value" ] && [ -f "$TFVARS" ]; then
    value="$("$(python_bin)" -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$TFVARS" "$key")"
  fi
  printf '%s\n' "$value"
}

write_tfvars() {
  local cidr="$1" key_json=null existing_json=null pubkey domain servers optional=""
  domain="$(remembered domain_name "${RADIO_DOMAIN:-}")"
  servers="$(remembered model_server_count "${RADIO_MODEL_SERVERS:-}")"
  if [ -n "$domain" ]; then
    [[ "$domain" =~ ^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$ ]] ||
      die "RADIO_DOMAIN=$domain is not a lower-case DNS name such as radio.example.org"
    optional+=$',\n  "domain_name": "'"$domain"'"'
  fi
  if [ -n "$servers" ]; then
    [[ "$servers" =~ ^([1-9]|10)$ ]] || die "RADIO_MODEL_SERVERS=$servers is not a number from 1 to 10"
    optional+=$',\n  "model_server_count": '"$servers"
  fi
  if [ -n "${RADIO_EXISTING_KEY_NAME:-}" ]; then
    existing_json="\"$RADIO_EXISTING_KEY_NAME\""
  elif [ -f "$KEY" ]; then
    pubkey="$(ssh-keygen -y -f "$KEY")" || die "ssh-keygen cannot read .aws/key.pem (is it a private key without passphrase?)"
    key_json="\"$pubkey\""
  fi
  mkdir -p "$STATE_DIR"
  cat >"$TFVARS" <<EOF
{
  "admin_cidr": "$cidr",
  "aws_profile": "$PROFILE",
  "region": "$REGION",
  "credentials_file": ".aws/_credentials",
  "ssh_public_key": $key_json,
  "existing_key_name": $existing_json$optional
}
EOF
}

tf() {
  (cd "$ROOT" && terraform "$@")
}

tf_init() {
  info "terraform init"
  tf init -input=false >&2
}

# Ships the committed HEAD: what runs in AWS is always a commit you can name.
prepare_release() {
  RELEASE="$(git -C "$ROOT" rev-parse --short=12 HEAD)" || die "$ROOT is not a git checkout with a commit"
  if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
    warn "uncommitted changes are not deployed; deploying commit $RELEASE"
  fi
  mkdir -p "$STATE_DIR"
  git -C "$ROOT" archive --format=tar.gz -o "$ARCHIVE" HEAD
  info "Release $RELEASE packed into ${ARCHIVE#"$ROOT"/}"
}

# With model_server_count > 1 the model servers belong to an Auto Scaling group:
# ask EC2 for their addresses (nothing is printed with a single server).
# Sets MODEL_ARGS to "--model-host IP" pairs for the helpers.
find_model_hosts() {
  local ip
  local -a found
  local -a aws=(--file "$CREDENTIALS" --profile "$PROFILE" --region "$REGION")
  MODEL_ARGS=()
  read -r -a found <<<"$(pydeploy model-hosts "$OUTPUTS" "${aws[@]}")"
  for ip in ${found[@]+"${found[@]}"}; do MODEL_ARGS+=(--model-host "$ip"); done
}

write_inventory() {
  tf output -json >"$OUTPUTS"
  find_model_hosts
  pydeploy inventory "$OUTPUTS" --key "$KEY" --known-hosts "$STATE_DIR/known_hosts" \
    --output "$INVENTORY" ${RELEASE:+--release "$RELEASE"} ${RELEASE:+--src-archive "$ARCHIVE"} \
    ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"}
}

wait_for_ssh() {
  info "Waiting for SSH on $*"
  pydeploy wait-ssh "$@"
}

# The jobs' data on the hosts (roles/radio_common: radio_data_archive): the gate's held-out
# val splits (deploy-ready) and the drift reference's train splits (data-drift). Sets
# DATA_VARS; without data the playbooks place none, and those jobs fail saying why.
pack_data() {
  local data="${RADIO_DATA:-$ROOT/../shared/data}"
  DATA_VARS=()
  if [ ! -d "$data" ]; then
    warn "no data sources at $data (set RADIO_DATA): deploy-ready and data-drift will fail on the hosts"
    return 0
  fi
  mkdir -p "$STATE_DIR"
  tar -C "$data" -czf "$DATA_ARCHIVE" .
  DATA_VARS=(-e "radio_data_archive=$DATA_ARCHIVE")
}

# Arguments: extra ansible-playbook options from the command line.
run_playbooks() {
  local playbook
  local -a vars
  registry_secrets
  pack_data
  # The model host first: the app's health check asks it for /ping. Both get the registry's
  # password: the model host runs the registry, the frontend logs in to it.
  for playbook in mlflow.playbook.yml app.playbook.yml; do
    vars=(-e "@$REGISTRY_SECRETS" ${DATA_VARS[@]+"${DATA_VARS[@]}"})
    info "ansible-playbook $playbook"
    (cd "$ROOT" && ansible-playbook -i "$INVENTORY" "$playbook" ${vars[@]+"${vars[@]}"} "$@")
  done
}

# With several model servers: the release and the model hosts' variables go to the private
# bucket, where a new or replacement server's user data fetches them at boot.
publish_boot() {
  registry_secrets
  pydeploy publish-boot "$OUTPUTS" --archive "$ARCHIVE" --release "$RELEASE" \
    --secrets "$REGISTRY_SECRETS" --file "$CREDENTIALS" --profile "$PROFILE" --region "$REGION" \
    ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"}
}

smoke_test() {
  info "Smoke test: $1"
  pydeploy smoke "$@"
}

print_addresses() {
  pydeploy addresses "$OUTPUTS" ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"}
}

cmd_deploy() {
  local cidr hosts
  preflight deploy
  check_credentials
  cidr="$(admin_cidr)"
  [ -n "${RADIO_ADMIN_CIDR:-}" ] || admin_drift_hint "$cidr"
  write_tfvars "$cidr"
  prepare_release
  tf_init
  info "terraform apply (a first deploy takes about 15 minutes: 3 for the hosts, 10 for packages; a re-run about 2)"
  tf apply -input=false -auto-approve -var-file="$TFVARS" >&2
  write_inventory
  publish_boot
  read -r -a hosts <<<"$(pydeploy hosts "$OUTPUTS" ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"})"
  wait_for_ssh "${hosts[@]}"
  run_playbooks "$@"
  sync_registry "${hosts[1]}"
  smoke_test "$(pydeploy url "$OUTPUTS" ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"})/health" --allow-self-signed
  print_addresses
  echo "(port 8000 answers the frontend only; see the README, Deploy to AWS, to reach it yourself)"
}

cmd_plan() {
  preflight plan
  check_credentials
  write_tfvars "$(admin_cidr)"
  tf_init
  tf plan -input=false -var-file="$TFVARS"
}

cmd_destroy() {
  local -a approve=()
  preflight destroy
  check_credentials
  # Variables must be set even though nothing is created; any valid CIDR will do.
  [ -f "$TFVARS" ] || write_tfvars "${RADIO_ADMIN_CIDR:-127.0.0.1/32}"
  if [ "${RADIO_AUTO_APPROVE:-0}" = 1 ]; then approve=(-auto-approve); fi
  tf_init
  # The +alternative keeps bash 3.2 (macOS) happy with an empty array under set -u.
  tf destroy -input=false -var-file="$TFVARS" ${approve[@]+"${approve[@]}"}
  rm -f "$OUTPUTS" "$INVENTORY"
}

# The Learner Lab stops instances between sessions: refresh Terraform's view
# first (read-only: -refresh-only changes no resource), so the model host's new
# public address is the one printed. Without credentials the last known state is shown.
cmd_status() {
  local url
  preflight status
  mkdir -p "$STATE_DIR"
  MODEL_ARGS=()
  if [ -f "$CREDENTIALS" ] && [ -f "$TFVARS" ] && grep -Eq "^[[:space:]]*\[$PROFILE\][[:space:]]*$" "$CREDENTIALS"; then
    info "Refreshing the state from AWS (terraform apply -refresh-only)"
    tf apply -refresh-only -auto-approve -input=false -var-file="$TFVARS" >&2 ||
      warn "refresh failed (expired lab session?): showing the last known state"
  else
    warn "no credentials or no .deploy/terraform.tfvars.json: showing the last known state"
  fi
  tf output -json >"$OUTPUTS.tmp" 2>/dev/null || echo '{}' >"$OUTPUTS.tmp"
  mv "$OUTPUTS.tmp" "$OUTPUTS"
  # Asks EC2 only with several model servers; an expired session lists none.
  if [ -f "$CREDENTIALS" ]; then find_model_hosts 2>/dev/null; fi
  pydeploy addresses "$OUTPUTS" ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"} || die "nothing deployed (run ./deploy.sh)"
  url="$(pydeploy url "$OUTPUTS" ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"})"
  smoke_test "$url/health" --attempts 1 --allow-self-signed
}

# Each host keeps every release with its own virtualenv and remembers the one
# before the last switch: going back is a link flip and a restart, with the
# health checks of a deploy. A second rollback goes forward again.
cmd_rollback() {
  local -a hosts
  preflight deploy
  check_credentials
  mkdir -p "$STATE_DIR"
  RELEASE=""
  write_inventory
  read -r -a hosts <<<"$(pydeploy hosts "$OUTPUTS" ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"})"
  wait_for_ssh "${hosts[@]}"
  run_playbooks -e radio_rollback=true "$@"
  smoke_test "$(pydeploy url "$OUTPUTS" ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"})/health" --allow-self-signed
  print_addresses
}

# On-demand snapshots of the data volumes (the daily ones come from Data
# Lifecycle Manager); restoring is described in the README.
cmd_backup() {
  local -a aws=(--file "$CREDENTIALS" --profile "$PROFILE" --region "$REGION")
  preflight backup
  check_credentials
  mkdir -p "$STATE_DIR"
  tf output -json >"$OUTPUTS"
  info "Snapshotting the data volumes"
  pydeploy backup "$OUTPUTS" "${aws[@]}"
}

main() {
  local cmd="${1:-deploy}"
  case "$cmd" in
    deploy)
      [ "$#" -eq 0 ] || shift
      cmd_deploy "$@"
      ;;
    plan) cmd_plan ;;
    destroy) cmd_destroy ;;
    status) cmd_status ;;
    backup) cmd_backup ;;
    rollback)
      shift
      cmd_rollback "$@"
      ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      die "unknown command '$cmd' (use deploy, plan, destroy, status, backup or rollback)"
      ;;
  esac
}

# Sourcing the script (as its tests do) defines the functions without running.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
