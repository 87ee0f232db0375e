# syntax=docker/dockerfile:1.7
# The model service image: one verified model bundle baked in, dependencies from uv.lock only.
# Build with `make image` (after `make package`): docker build where an engine answers, else buildah,
# with the bundle's name, version and data hash and the git revision as build arguments
# (deploy/build_image.py). tests/deploy/test_container.py builds and runs it with podman.

# The base by digest, the tag beside it (Dependabot's docker ecosystem proposes new digests). Where
# no registry answers, deploy/build_image.py builds from a local stand-in of the tag instead.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm@sha256:1321a0be9c13828a9b489310f1b1c265f07c5be0e67302e1759ad78da19103a7
# numpy: the serving group only, for a bundle whose model compiled (compiled.json); sklearn: with
# scikit-learn, pandas and skops, for one that did not. build_image picks it from the bundle.
ARG MODEL_RUNTIME=numpy

# ---- the image: one stage, no build tools left, non-root, read-only friendly ----
# Layer order for the cache: what changes least first (user, dependencies, environment), then the
# config and the bundle, then the code and the bundle check, the labels last. A code-only change
# re-runs only the code's COPYs, the bundle check and the labels; the dependencies' layer is built
# here (not copied from another stage), so nothing re-reads or re-copies the venv. Every cached
# step still costs a lookup (buildah: about 60 ms, more with many images in local storage), so the
# files the dependencies need come in one COPY.
FROM ${PYTHON_IMAGE} AS runtime
# A numeric UID, so Kubernetes can check runAsNonRoot without resolving a user name.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
WORKDIR /app
ARG MODEL_RUNTIME
# Only the lock decides what is installed: --frozen never re-resolves; only the `serving` group
# (pyproject.toml), plus `sklearn` for MODEL_RUNTIME=sklearn, so no training, validation or test
# tool is in the image. The lock is copied, not bind-mounted: buildah's layer cache ignores the
# content of bind mounts (a changed uv.lock would reuse the old venv). The wheels' own test suites,
# C headers and Cython sources are never imported (about 120 MB), so the same RUN removes them.
# uv itself comes from PyPI, every file hash-pinned (.ci/uv/requirements.txt, copied as
# requirements.txt), into /tmp/uv and is removed by the same RUN: it is in no layer. (A bind mount
# of uv from another stage failed under buildah 1.28 whenever that stage came from the cache:
# "couldn't find … to bind mount".)
COPY uv.lock pyproject.toml .ci/uv/requirements.txt /app/
RUN --mount=type=cache,target=/root/.cache/uv \
    case "${MODEL_RUNTIME}" in \
      numpy) set -- --group serving ;; \
      sklearn) set -- --group serving --group sklearn ;; \
      *) echo "error: MODEL_RUNTIME=${MODEL_RUNTIME}: expected numpy or sklearn" >&2; exit 1 ;; \
    esac \
    && python -m pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
      --require-hashes --no-deps --only-binary=:all: --target /tmp/uv -r requirements.txt \
    && UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
       UV_PROJECT_ENVIRONMENT=/app/.venv \
       /tmp/uv/bin/uv sync --frozen --no-dev --no-default-groups "$@" --no-install-project \
    && rm -rf /tmp/uv requirements.txt \
    && find /app/.venv/lib/python3.11/site-packages -depth -type d \( -name tests -o -name include \) \
      -exec rm -rf {} + \
    && find /app/.venv/lib/python3.11/site-packages -type f \
      \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.h' \) -delete
# Everything from here on runs as the service user, the build's bundle check too. Code, config and
# model stay owned by root (COPY ignores USER): the service user can read, not change them.
USER 10001:10001
# Writable state goes to /tmp (an emptyDir in Kubernetes; the root filesystem is read-only).
# serving.serve reads UVICORN_HOST, UVICORN_PORT and WEB_CONCURRENCY (core/settings.py), verifies
# the bundle and gives several workers one metrics folder, so /metrics counts them all.
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    CONFIG_PATH=/app/config.yaml \
    MODEL_BUNDLE=/app/bundle \
    PREDICTION_LOG_URL=sqlite:////tmp/predictions.db \
    REPORTS_DIR=/tmp/reports \
    UVICORN_HOST=0.0.0.0 \
    UVICORN_PORT=8000 \
    WEB_CONCURRENCY=2
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-m", "deploy.healthcheck"]
CMD ["python", "-m", "serving.serve"]
ARG CONFIG=config.yaml
COPY ${CONFIG} config.yaml
ARG BUNDLE_DIR=build/bundle
COPY ${BUNDLE_DIR}/ bundle/
ARG MODEL_NAME=""
ARG MODEL_VERSION=""
ARG DATA_SHA256=""
ARG BUNDLE_DIGEST=""
# The service checks the baked-in bundle against this digest at every start, and refuses to start
# without one (a MODEL_DIGEST overridden to empty).
ENV MODEL_DIGEST="${BUNDLE_DIGEST}" \
    REQUIRE_MODEL_DIGEST=1
COPY core/ core/
COPY serving/ serving/
COPY deploy/ deploy/
# A bundle whose files do not match its manifest, whose manifest does not match the digest recorded
# at packaging (BUNDLE_DIGEST, required), or whose metadata disagrees with the labels below, stops
# the build here instead of shipping; so does a bundle that did not compile in a numpy image. It
# runs as the service user, with the image's own interpreter, venv and code, against the bundle
# where it is served from.
RUN python -m deploy.verify_bundle bundle --require-digest \
      --expected-digest "${BUNDLE_DIGEST}" \
      --model-name "${MODEL_NAME}" --model-version "${MODEL_VERSION}" --data-sha256 "${DATA_SHA256}" \
    && if [ "${MODEL_RUNTIME}" = numpy ] && [ ! -f bundle/compiled.json ]; then \
      echo "error: the bundle's model did not compile to numpy (no compiled.json); build with" \
        "--build-arg MODEL_RUNTIME=sklearn (make image does) to serve it with scikit-learn" >&2; \
      exit 1; \
    fi
ARG SOURCE="https://github.com/your-org/mlops-gitops-template"
ARG REVISION="unknown"
LABEL org.opencontainers.image.title="mlops-gitops-template model service" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      io.github.mlops-template.model.name="${MODEL_NAME}" \
      io.github.mlops-template.model.version="${MODEL_VERSION}" \
      io.github.mlops-template.data.sha256="${DATA_SHA256}" \
      io.github.mlops-template.bundle.digest="${BUNDLE_DIGEST}"
