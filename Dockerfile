# syntax=docker/dockerfile:1
#
# Pregonero in a container: build with the Rust toolchain, run on a slim Debian.
#
#   docker build -t pregonero .
#   docker run -d --name pregonero -p 8080:8080 -v pregonero-data:/var/lib/pregonero pregonero
#
# The first start prints the admin's generated password in `docker logs pregonero`, unless
# PREGONERO_ADMIN_PASSWORD is given with -e. The service runs as user 10001; a host folder
# mounted on /var/lib/pregonero instead of a named volume must be writable by that uid.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target folders are build caches, kept between builds by BuildKit; the
# binary is copied out of the cache mount in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/pregonero /usr/local/bin/pregonero

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 pregonero \
    && useradd --system --uid 10001 --gid pregonero --home-dir /var/lib/pregonero \
        --shell /usr/sbin/nologin pregonero \
    && mkdir -p /var/lib/pregonero \
    && chown pregonero:pregonero /var/lib/pregonero
COPY --from=build /usr/local/bin/pregonero /usr/local/bin/pregonero

ENV PREGONERO_DATA_DIR=/var/lib/pregonero \
    PREGONERO_LISTEN=0.0.0.0:8080
USER pregonero
WORKDIR /var/lib/pregonero
VOLUME ["/var/lib/pregonero"]
EXPOSE 8080

# No HEALTHCHECK: the slim image has no curl or wget, and `pregonero` has no health
# subcommand yet. Orchestrators can probe GET /health on port 8080 from outside.

ENTRYPOINT ["/usr/local/bin/pregonero"]
CMD ["serve"]
