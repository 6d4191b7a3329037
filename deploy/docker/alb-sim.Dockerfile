# syntax=docker/dockerfile:1
# alb-sim, the local ALB stand-in (key endpoint + token-injecting proxy). For
# local and CI use only: it signs tokens for whoever asks. Build context: the
# repository root (alb-sim links the filter crate for `check-config`).
#   docker build -f deploy/docker/alb-sim.Dockerfile -t alb-oidc-alb-sim .

FROM rust:1.95 AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p alb-sim \
 && install -D -m 0755 target/release/alb-sim /out/alb-sim

FROM debian:trixie-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/alb-sim --shell /usr/sbin/nologin alb-sim \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/alb-sim /var/lib/alb-sim/keys
COPY --from=build /out/alb-sim /usr/local/bin/alb-sim
COPY alb-sim/identities.example.json /etc/alb-sim/identities.json
USER 10001:10001
WORKDIR /var/lib/alb-sim
EXPOSE 8000 8081
ENTRYPOINT ["alb-sim"]
CMD ["--help"]
