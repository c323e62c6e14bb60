# A NATS server image built from the nats-server Go module (the version pinned
# in go.mod), for tests and compose on machines that cannot pull images.
ARG BASE=scratch
FROM ${BASE}
COPY nats-server /nats-server
# The JetStream store directory, owned by the non-root user: scratch has no
# writable directory, and a named volume mounted here inherits the owner.
COPY --chown=65532:65532 data /data
USER 65532:65532
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
CMD ["--jetstream", "--store_dir", "/data", "--http_port", "8222"]
