# herald in a container: build on Debian bookworm, run on bookworm-slim.
#   docker build -t herald .
#   docker run -p 8071:8071 -v herald-data:/data herald
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh build
COPY . .
RUN rm -rf build && scripts/build.sh && strip build/herald

FROM debian:bookworm-slim
COPY scripts/install-deps.sh /usr/local/lib/herald/install-deps.sh
RUN /usr/local/lib/herald/install-deps.sh runtime && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/herald /usr/local/bin/herald
RUN useradd --system --home /data herald && mkdir -p /data && chown herald /data
USER herald
WORKDIR /data
ENV HERALD_LISTEN=0.0.0.0:8071 HERALD_DB=/data/herald.db
EXPOSE 8071
ENTRYPOINT ["herald"]
CMD ["serve"]
