# syntax=docker/dockerfile:1
# The tggate image: Bot Logic, the Telegram Client (and the webhook intake) from one image, the
# command chosen by the container's arguments (`logic …`, `client`, `intake …`).
# Build: `docker build -t tggate:0.1.0 .` from the repository's root (docs/deploy.md#the-image).
# Written, not built here: this machine has no container engine; tests/deploy/test_dockerfile.py
# checks what can be checked without one (stages, user, sources, the installed set).

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# ---- build: the product and its locked dependencies into /app/.venv, nothing else ----
FROM ${PYTHON_IMAGE} AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
# Compiled bytecode (faster start), real copies (the cache mount is not in the image), and the
# base image's Python (never a downloaded one, so the venv's interpreter exists at run time).
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PYTHON=/usr/local/bin/python3
WORKDIR /app
# The dependencies first, from the lock alone: this layer is rebuilt only when uv.lock changes.
# The sandbox's pyproject makes the workspace whole; the sandbox itself is not installed.
COPY pyproject.toml uv.lock README.md ./
COPY sandbox/pyproject.toml sandbox/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package tggate --no-install-workspace
# Then tggate itself, as a regular (not editable) install: the run stage needs no source tree.
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package tggate --no-editable

# ---- run: the virtual environment on the same base, as an unprivileged user ----
FROM ${PYTHON_IMAGE} AS run
RUN groupadd --system --gid 10001 tggate \
    && useradd --system --uid 10001 --gid tggate --no-create-home --shell /usr/sbin/nologin tggate \
    && mkdir -p /var/lib/tggate \
    && chown tggate:tggate /var/lib/tggate
# Owned by root, so the running process cannot change its own code.
COPY --from=build /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TGGATE_DATA_DIR=/var/lib/tggate
WORKDIR /var/lib/tggate
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["tggate"]
CMD ["logic", "--host", "0.0.0.0", "--port", "8080"]
