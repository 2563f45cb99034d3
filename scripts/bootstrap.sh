# Sourced by scripts/serve and scripts/test: make .venv/ ready on a fresh Debian/Ubuntu box.
# Installs the system library PyTurboJPEG loads (libturbojpeg), creates the virtual
# environment (reused when present) and installs the project into it whenever its
# packaging files changed since the last install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="test"  # one environment serves both commands: no reinstall between them

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else echo "facestream: need root to run: $*" >&2; exit 1
    fi
}

apt_install() {
    if ! command -v apt-get >/dev/null; then
        echo "facestream: please install $* with your system's package manager" >&2
        exit 1
    fi
    if [ -z "${APT_UPDATED:-}" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

if ! ldconfig -p 2>/dev/null | grep -q 'libturbojpeg\.so'; then
    echo "facestream: installing libturbojpeg (libjpeg-turbo's TurboJPEG API)" >&2
    apt_install libturbojpeg0 || apt_install libturbojpeg
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "facestream: creating $VENV" >&2
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        apt_install python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
fi

STAMP="$VENV/.facestream-installed"
WANT="$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1) $EXTRAS"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "facestream: installing the project and its dependencies into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT[$EXTRAS]"
    echo "$WANT" > "$STAMP"
fi
cd "$ROOT"
