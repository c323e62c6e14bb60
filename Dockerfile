# mdbridge container image, built from a binary compiled beforehand
# (deploy/docker/build.sh does both): no image is pulled at build time other
# than BASE.
#
#   CGO_ENABLED=0 go build -trimpath -o deploy/docker/context/mdbridge ./cmd/mdbridge
#   mkdir deploy/docker/context/data   # empty: becomes /data and /tmp
#   docker build -f Dockerfile --build-arg BASE=scratch -t mdbridge:dev deploy/docker/context
#
# BASE defaults to distroless static (CA certificates, tzdata, a nonroot user).
# With BASE=scratch, build.sh puts the host's CA bundle into the context so
# TLS to the exchanges still verifies.
ARG BASE=gcr.io/distroless/static-debian12:nonroot
FROM ${BASE}
COPY mdbridge /usr/local/bin/mdbridge
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# Writable directories for the non-root user (scratch has none): the
# embedded NATS store (MDB_DATA_DIR, used only when MDB_NATS_URL is empty)
# and the temporary directory (`mdbridge demo`). Kubernetes with
# readOnlyRootFilesystem uses an external NATS and needs neither.
COPY --chown=65532:65532 data /data
COPY --chown=65532:65532 data /tmp
# Numeric non-root user: works on scratch (no /etc/passwd) and satisfies
# Kubernetes runAsNonRoot checks.
USER 65532:65532
EXPOSE 8080
ENV MDB_HTTP_ADDR=:8080 MDB_LOG_FORMAT=json MDB_DATA_DIR=/data
ENTRYPOINT ["/usr/local/bin/mdbridge"]
CMD ["run"]
