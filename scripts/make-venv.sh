#!/usr/bin/env bash
# Creates or updates the book's virtual environment: what `make env` (and so `make book`
# and `make test`) runs. Usage: scripts/make-venv.sh VENV
#
# Settings, from the Makefile or the environment:
#   PYTHON  the interpreter that creates VENV (default python3): Python 3.11, 3.12 or 3.13.
#   TORCH   cpu (default): on Linux, PyTorch's CPU-only wheel from TORCH_CPU_INDEX
#           (PyPI's Linux wheel is the CUDA build, several GB more);
#           cuda: PyPI's default wheel, which on Linux is the CUDA build.
#           On macOS both take PyPI's wheel, which is CPU/MPS already.
#   TORCH_CPU_INDEX  PyTorch's CPU wheel index (default https://download.pytorch.org/whl/cpu).
#
# The interpreter is checked first, so that a wrong version or a missing venv module is
# named here instead of failing deep inside pip. PyTorch's index is used only if it
# answers within a few seconds: pip would otherwise retry it for every package it
# installs (minutes) before giving up. Without it, PyPI's torch wheel is installed.
set -euo pipefail

venv=${1:?usage: scripts/make-venv.sh VENV}
PYTHON=${PYTHON:-python3}
TORCH=${TORCH:-cpu}
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
# Keep in step with requires-python in pyproject.toml.
SUPPORTED="3.11 3.12 3.13"

fail() {
    echo "make: $*" >&2
    exit 1
}

# check_version INTERPRETER HINT: a Python the book supports (sets $version).
check_version() {
    local py=$1 hint=$2
    command -v "$py" >/dev/null 2>&1 ||
        fail "'$py' not found; the book needs Python 3.11, 3.12 or 3.13. $hint"
    # Valid in Python 2 as well, so that an old interpreter is named, not a SyntaxError.
    version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) ||
        fail "'$py' does not run; the book needs Python 3.11, 3.12 or 3.13. $hint"
    case " $SUPPORTED " in
        *" $version "*) ;;
        *) fail "$py is Python $version; the book needs Python 3.11, 3.12 or 3.13. $hint" ;;
    esac
}

case $TORCH in
    cpu | cuda) ;;
    *) fail "TORCH=$TORCH: expected TORCH=cpu (the default) or TORCH=cuda" ;;
esac

if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    check_version "$PYTHON" "Install one; name it if it is not python3: make PYTHON=python3.12"
    # Debian and Ubuntu ship ensurepip, which venv needs to install pip, separately.
    "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 ||
        fail "$PYTHON (Python $version) cannot create a virtual environment: its venv" \
            "module or ensurepip is missing. On Debian/Ubuntu: sudo apt install python$version-venv"
    echo "Creating $venv with $PYTHON"
    "$PYTHON" -m venv --clear "$venv"
fi
# A venv made earlier by an interpreter the book no longer supports.
check_version "$venv/bin/python" "Remove $venv (rm -rf $venv) and run make again."

py="$venv/bin/python"
"$py" -m pip install --quiet --upgrade "pip>=24"

installed_torch() {
    "$py" -c 'from importlib.metadata import version; print(version("torch"))' 2>/dev/null ||
        true
}

index_args=()
if [ "$(uname -s)" = Linux ]; then
    if [ "$TORCH" = cpu ]; then
        # HEAD of the page pip would read, within 10 s (DNS included); any answer but a
        # server error counts.
        if "$py" - "$TORCH_CPU_INDEX/torch/" <<'EOF'; then
import sys
import threading
import urllib.error
import urllib.request

url, problems = sys.argv[1], []


def probe():
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5)
        problems.append(None)
    except urllib.error.HTTPError as error:
        problems.append(None if error.code < 500 else f"it answers {error.code}")
    except Exception as error:
        problems.append(str(error))


thread = threading.Thread(target=probe, daemon=True)
thread.start()
thread.join(10)
problem = problems[0] if problems else "no answer within 10 s"
if problem:
    print(f"make: PyTorch's CPU index {url} cannot be reached ({problem});", file=sys.stderr)
    sys.exit(1)
EOF
            index_args=(--extra-index-url "$TORCH_CPU_INDEX")
            # Switching from TORCH=cuda: pip would keep a torch that matches the pin, and
            # the CUDA libraries (unpinned in constraints.txt) would stay behind.
            case $(installed_torch) in
                "" | *+cpu) ;;
                *)
                    # shellcheck disable=SC2046  # one package name a word
                    "$py" -m pip uninstall --quiet --yes torch $("$py" -m pip list \
                        --format=freeze 2>/dev/null | grep -E '^(nvidia-|cuda-|triton==)' | cut -d= -f1)
                    ;;
            esac
        else
            echo "make: so if torch is to be installed or upgraded, it comes from PyPI:" \
                "on Linux the CUDA build, several GB more than the CPU-only one." >&2
        fi
    else
        case $(installed_torch) in
            *+cpu) "$py" -m pip uninstall --quiet --yes torch ;;
        esac
    fi
fi

# ${a[@]+...}: an empty array under set -u in macOS's bash 3.2.
"$py" -m pip install --quiet -r requirements.txt -c constraints.txt ${index_args[@]+"${index_args[@]}"}
echo "torch $(installed_torch) installed in $venv"
