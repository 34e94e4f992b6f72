# Lanyard's container image: the `lanyard` server and CLI and the `lanyard-demo` apps.
#   docker build -t lanyard .
# (.ci/image builds and runs it with podman where no Docker engine runs; CI does.)
# Two stages: the build (the Rust toolchain, ~2 GB, thrown away) and a small runtime on
# Debian slim, running as an unprivileged user, with a health check that asks /readyz.
# Templates, styles and scripts are compiled into the binaries: nothing else is copied.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p lanyard-idp -p lanyard-demo \
    && install -m 0755 target/release/lanyard target/release/lanyard-demo /usr/local/bin/

FROM debian:bookworm-slim
# ca-certificates: back-channel logout to https apps. Nothing else is installed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/lanyard --create-home lanyard
COPY --from=build /usr/local/bin/lanyard /usr/local/bin/lanyard-demo /usr/local/bin/
USER lanyard:lanyard
WORKDIR /var/lib/lanyard
ENV LANYARD_LISTEN=0.0.0.0:8080 \
    LANYARD_LOG_FORMAT=json
EXPOSE 8080
# `lanyard probe` asks this node's /readyz (no curl in the image).
HEALTHCHECK --interval=10s --timeout=4s --start-period=20s --retries=3 CMD ["lanyard", "probe"]
# SIGTERM: stop accepting, drain for LANYARD_SHUTDOWN_GRACE_SECS (20 s), store the audit
# events still queued (up to 5 s), exit 0. Give the orchestrator's stop timeout a few seconds
# more than both.
STOPSIGNAL SIGTERM
ENTRYPOINT ["lanyard"]
CMD ["serve"]
