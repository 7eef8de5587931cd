# syntax=docker/dockerfile:1
# The otelcol-tracelookup image: `make image` builds it.

# Build: the Makefile builds ocb from the tools module at its pinned version,
# and ocb the collector, statically linked.
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 make build \
 && mkdir -p /out/var/lib/otelcol-tracelookup \
 && cp bin/otelcol-tracelookup /out/otelcol-tracelookup

# Run: the binary, CA certificates and a snapshot directory, nothing else,
# as a user without privileges. The collector Helm chart starts
# /<command.name>, so the binary sits at the root.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=10001:10001 /out/var/lib/otelcol-tracelookup /var/lib/otelcol-tracelookup
COPY --from=build /out/otelcol-tracelookup /otelcol-tracelookup
COPY deploy/image/config.yaml /etc/otelcol-tracelookup/config.yaml
USER 10001:10001
EXPOSE 4317 4318 8088
ENTRYPOINT ["/otelcol-tracelookup"]
CMD ["--config", "/etc/otelcol-tracelookup/config.yaml"]
