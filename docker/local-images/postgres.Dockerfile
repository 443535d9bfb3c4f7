# Stand-in for postgres:16: Debian bookworm's PostgreSQL 15, with an entrypoint that reads
# POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB and PGDATA as the official image does.
ARG BASE
FROM ${BASE}
RUN set -eux; \
    mkdir -p /etc/postgresql-common; \
    # No cluster from the package: the entrypoint initialises the data volume.
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf; \
    apt-get update; \
    apt-get install -y --no-install-recommends postgresql-15; \
    rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
