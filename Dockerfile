# syntax=docker/dockerfile:1
# bridge: a static binary on a minimal image, running as a non-root user (65532) that works on a
# read-only root filesystem: it writes only to /var/lib/bridge (store, state) and /tmp.
#   docker build -t bridge .
#   docker run --rm --read-only --tmpfs /tmp -v $PWD/config.yaml:/etc/bridge/config.yaml:ro \
#     -v bridge-data:/var/lib/bridge -e BRIDGE_BABELFORCE_PASSWORD=... -p 8080:8080 bridge
# Kubernetes: the Helm chart in deploy/helm/bridge.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bridge ./cmd/bridge \
 && mkdir -p /out/var/lib/bridge /out/etc/bridge

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bridge /usr/local/bin/bridge
COPY --from=build --chown=65532:65532 /out/var/lib/bridge /var/lib/bridge
COPY --from=build /src/config.example.yaml /etc/bridge/config.example.yaml
USER 65532:65532
# Relative paths (store.path's default bridge.db) land in the data volume, not on the root.
WORKDIR /var/lib/bridge
# /etc/bridge holds config.yaml (mount read-only); /var/lib/bridge holds the SCIM store and state.
VOLUME ["/var/lib/bridge"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bridge"]
CMD ["serve", "--config", "/etc/bridge/config.yaml"]
