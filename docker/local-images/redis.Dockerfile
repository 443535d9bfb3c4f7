# Stand-in for redis:7: Debian bookworm's redis-server (7.0), run as the redis user in /data
# (where the append-only file goes, as in the official image).
ARG BASE
FROM ${BASE}
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends redis-server redis-tools; \
    rm -rf /var/lib/apt/lists/*; \
    mkdir /data; \
    chown redis:redis /data
# A new named volume takes /data's owner from the image.
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
