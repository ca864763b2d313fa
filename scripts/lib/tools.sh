# shellcheck shell=bash
# Sourced by scripts/check-deploy and scripts/smoke: the project-local tool venv.
#
#   tools_install PKG...   ensure .tools/venv holds the pinned PKGs of
#                          scripts/tools-requirements.txt (installed from PyPI
#                          with pip when missing); puts its bin/ first on PATH.
#
# TOOLS_VENV overrides the venv's location.

TOOLS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS_VENV="${TOOLS_VENV:-$TOOLS_ROOT/.tools/venv}"
TOOLS_REQUIREMENTS="$TOOLS_ROOT/scripts/tools-requirements.txt"

tools_install() {
  local want=() pkg line have missing=()
  for pkg in "$@"; do
    line="$(grep -E "^$pkg==" "$TOOLS_REQUIREMENTS")" || {
      echo "tools: $pkg is not pinned in $TOOLS_REQUIREMENTS" >&2
      return 1
    }
    want+=("$line")
  done
  mkdir -p "$(dirname "$TOOLS_VENV")"
  (
    # One installer at a time (check-deploy and smoke may run side by side).
    flock -w 600 9 || { echo "tools: $TOOLS_VENV is locked" >&2; exit 1; }
    if [ ! -x "$TOOLS_VENV/bin/python" ]; then
      python3 -m venv "$TOOLS_VENV"
    fi
    # pip freeze spells names with - or _; compare them normalised.
    have="$("$TOOLS_VENV/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null |
      tr 'A-Z_' 'a-z-')"
    for line in "${want[@]}"; do
      if ! grep -qxF "$(echo "$line" | tr 'A-Z_' 'a-z-')" <<<"$have"; then
        missing+=("$line")
      fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
      echo "tools: pip install ${missing[*]} into $TOOLS_VENV" >&2
      "$TOOLS_VENV/bin/python" -m pip install --disable-pip-version-check -q "${missing[@]}"
    fi
  ) 9>"$TOOLS_VENV.lock"
  export PATH="$TOOLS_VENV/bin:$PATH"
}
