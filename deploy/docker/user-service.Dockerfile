# syntax=docker/dockerfile:1
# The alb-oidc user service (gRPC). Build context: the repository root.
#   docker build -f deploy/docker/user-service.Dockerfile -t alb-oidc-user-service .
# Used by envoy/docker-compose.yaml and, pushed to a registry, by
# deploy/istio/user-service.yaml.

FROM rust:1.95 AS build
WORKDIR /src
COPY . .
# rust-toolchain.toml pins the compiler (rustup fetches it if the image differs).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p alb-oidc-user-service \
 && install -D -m 0755 target/release/alb-oidc-user-service /out/alb-oidc-user-service

# trixie-slim: glibc at least as new as the build image's.
FROM debian:trixie-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/alb-oidc --shell /usr/sbin/nologin alb-oidc \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/alb-oidc
COPY --from=build /out/alb-oidc-user-service /usr/local/bin/alb-oidc-user-service
USER 10001:10001
WORKDIR /var/lib/alb-oidc
# Defaults for a container: listen on all interfaces; SQLite in the data
# directory (mount a volume there), or set a postgres:// URL.
ENV ALB_OIDC_LISTEN=0.0.0.0:50051 \
    ALB_OIDC_DATABASE_URL=sqlite:///var/lib/alb-oidc/users.db \
    ALB_OIDC_LOG_FORMAT=json
EXPOSE 50051
ENTRYPOINT ["alb-oidc-user-service"]
CMD ["serve"]
