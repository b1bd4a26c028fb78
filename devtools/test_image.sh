#!/usr/bin/env bash
# `make test-image`: build container/Dockerfile with podman and run it as SageMaker does.
#
# No Docker engine and no image registry are reachable here, so:
#   1. a Debian bookworm root filesystem is made with debootstrap and imported
#      into podman (python3.11, like the PyTorch images' python);
#   2. a CPU "PyTorch runtime" base is built on it from the local torch wheel
#      (the stand-in for the default CUDA base image: python3 + torch importable);
#   3. container/Dockerfile is built UNCHANGED with BASE_IMAGE pointing at it;
#   4. the image runs as `IMAGE serve` with a tiny model mounted at /opt/ml/model,
#      and /ping, /invocations and a graceful stop (exit 0) are checked.
#
# Exit codes: 0 passed, or skipped because the machine cannot do it (no apt,
# no Debian mirror, no torch wheel: nothing our code can fix, reported as SKIP);
# 1 when our image fails to build or to serve.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
WORK=${TEST_IMAGE_WORKDIR:-.build/test-image}
TORCH_WHEEL=${TORCH_WHEEL:-/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
ROOTFS_IMAGE=localhost/sm-debian-python:bookworm
TORCH_BASE=localhost/sm-torch-cpu:2.13.0
IMAGE=${IMAGE:-localhost/async-inference-model-server:test}
NAME=model-server-test-$$
started=$(date +%s)

skip() { echo "test-image: SKIP: $*" >&2; exit 0; }
fail() { echo "test-image: FAIL: $*" >&2; exit 1; }
step() { echo "test-image: [$(( $(date +%s) - started ))s] $*" >&2; }

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

# ------------------------------------------------------------------ tools
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
    step "installing podman, runc, debootstrap"
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || skip "podman/runc/debootstrap missing and apt-get unavailable"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap; } \
        >"$WORK/apt.log" 2>&1 || skip "apt-get could not install podman/runc/debootstrap (see $WORK/apt.log)"
fi
[ -f "$TORCH_WHEEL" ] || skip "no local torch wheel at $TORCH_WHEEL"

# Rootless-style defaults fail inside this sandbox: fixed ulimits, runc, and
# cgroupfs (no systemd) are what works in an unprivileged build sandbox.
cat >"$WORK/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
export CONTAINERS_CONF="$WORK/containers.conf"
podman info >/dev/null 2>&1 || skip "podman cannot run here: $(podman info 2>&1 | tail -1)"

# ------------------------------------------------------------------ base images
if ! podman image exists "$ROOTFS_IMAGE"; then
    step "debootstrap bookworm (minbase + python3)"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$WORK/rootfs" >"$WORK/debootstrap.log" 2>&1 \
        || skip "debootstrap failed (Debian mirror unreachable?): $(tail -1 "$WORK/debootstrap.log")"
    tar -C "$WORK/rootfs" -c . | podman import - "$ROOTFS_IMAGE" >/dev/null
    rm -rf "$WORK/rootfs"
fi

if ! podman image exists "$TORCH_BASE"; then
    step "CPU torch base from $(basename "$TORCH_WHEEL")"
    wheel_dir=$(dirname "$TORCH_WHEEL")
    # torch into the system site-packages, as the PyTorch images have it;
    # Debian marks that directory externally managed, hence the flag.
    cat >"$WORK/Containerfile.torch" <<CONTAINERFILE
FROM $ROOTFS_IMAGE
RUN python3 -m pip install --no-cache-dir --break-system-packages /wheels/$(basename "$TORCH_WHEEL") \
    && python3 -c "import torch; print(torch.__version__)"
CONTAINERFILE
    podman build --network=host -v "$wheel_dir:/wheels:ro" -v "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" \
        -f "$WORK/Containerfile.torch" -t "$TORCH_BASE" "$WORK" >"$WORK/torch-base.log" 2>&1 \
        || skip "could not build the CPU torch base (PyPI unreachable?): $(tail -3 "$WORK/torch-base.log")"
fi

# ------------------------------------------------------------------ our image
step "building container/Dockerfile on $TORCH_BASE"
podman build --network=host --platform linux/amd64 --build-arg "BASE_IMAGE=$TORCH_BASE" \
    -v "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" -t "$IMAGE" container/ >"$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log" >&2; fail "image build failed (full log: $WORK/build.log)"; }
[ "$(podman image inspect "$IMAGE" --format '{{.Architecture}}')" = amd64 ] || fail "image is not amd64"
label=$(podman image inspect "$IMAGE" --format '{{index .Labels "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"}}')
[ "$label" = true ] || fail "bind-to-port label missing"

# ------------------------------------------------------------------ run it
step "running IMAGE serve"
rm -rf "$WORK/model"
"$PY" -m devtools.tiny_model "$WORK/model" >/dev/null 2>&1 || fail "could not build the tiny model"
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() { podman rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
# --network=host: no CNI networking in this sandbox. SAGEMAKER_BIND_TO_PORT
# exercises the bind-to-port contract; the model is mounted where SageMaker unpacks it.
podman run -d --name "$NAME" --network=host \
    -e SAGEMAKER_BIND_TO_PORT="$port" -e MODEL_SERVER_HOST=127.0.0.1 \
    -v "$WORK/model:/opt/ml/model:ro" "$IMAGE" serve >/dev/null

url="http://127.0.0.1:$port"
for _ in $(seq 1 240); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$url/ping" || true)
    [ "$code" = 200 ] && break
    [ "$(podman inspect "$NAME" --format '{{.State.Running}}')" = true ] || { podman logs "$NAME" >&2; fail "container exited"; }
    sleep 0.5
done
[ "$code" = 200 ] || { podman logs "$NAME" | tail -20 >&2; fail "/ping never returned 200 (last: $code)"; }

body=$(curl -s -f -H 'Content-Type: application/json' -H 'X-Amzn-SageMaker-Custom-Attributes: ci=1' \
    -D "$WORK/headers" -d '{"inputs": ["hello from podman", "second"], "parameters": {"max_new_tokens": 4}}' \
    "$url/invocations") || fail "/invocations failed"
echo "test-image: /invocations -> $body" >&2
"$PY" -c 'import json,sys; out=json.loads(sys.argv[1]); assert len(out)==2 and all("generated_text" in o for o in out), out' "$body" \
    || fail "unexpected /invocations body"
grep -qi '^x-amzn-sagemaker-custom-attributes: ci=1' "$WORK/headers" || fail "custom attributes not echoed"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary 'plain text' "$url/invocations")
[ "$code" = 200 ] || fail "text/plain request returned $code"

# A body far above the old 10 MiB limit: spooled to the image's /tmp while it arrives,
# cut before tokenizing (the default limit is SageMaker's async 1 GB).
head -c 30000000 /dev/zero | tr '\0' 'a' >"$WORK/large.txt"
code=$(curl -s -o "$WORK/large.out" -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary "@$WORK/large.txt" \
    "$url/invocations")
[ "$code" = 200 ] || { cat "$WORK/large.out" >&2; fail "a 30 MB text/plain request returned $code"; }
rm -f "$WORK/large.txt"

step "stopping (SIGTERM, 30 s grace as on SageMaker)"
podman stop -t 30 "$NAME" >/dev/null
exit_code=$(podman inspect "$NAME" --format '{{.State.ExitCode}}')
[ "$exit_code" = 0 ] || { podman logs "$NAME" | tail -20 >&2; fail "container exited with $exit_code after SIGTERM"; }
# MODEL_SERVER_DEVICE=cuda (what the stack sets on GPU instance types) where torch sees no
# GPU: /ping must stay 503 with the reason, never a healthy server on the CPU.
step "MODEL_SERVER_DEVICE=cuda without a GPU"
podman rm -f "$NAME" >/dev/null
podman run -d --name "$NAME" --network=host -e MODEL_SERVER_DEVICE=cuda \
    -e SAGEMAKER_BIND_TO_PORT="$port" -e MODEL_SERVER_HOST=127.0.0.1 \
    -v "$WORK/model:/opt/ml/model:ro" "$IMAGE" serve >/dev/null
status=""
for _ in $(seq 1 240); do
    status=$(curl -s "$url/ping" || true)
    case "$status" in *'"failed"'*) break ;; *healthy*) fail "/ping says healthy with MODEL_SERVER_DEVICE=cuda and no GPU" ;; esac
    sleep 0.5
done
case "$status" in *torch.cuda.is_available*) ;; *) fail "/ping did not report the CUDA failure: $status" ;; esac
podman logs "$NAME" 2>&1 | grep -q '"event": "device_unavailable"' || fail "no device_unavailable log line"
podman rm -f "$NAME" >/dev/null
step "PASS ($IMAGE)"
