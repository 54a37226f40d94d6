# edge in a FROM scratch image: one static musl binary and its config.
#
#   docker build -t edge .
#   docker run -d --network host -e STALWART=stalwart.example.ts.net edge
#
# Why it starts as root: it binds 25, 465, 587, 143, 993 and 443, then drops
# to uid/gid 65534 itself (`user = 65534:65534`, added to the config below)
# and checks that root cannot be regained.  That works on the host network,
# where a mail edge belongs (no NAT or userland proxy in front of it, so the
# PROXY header carries each client's real address; see README), and where
# Docker's unprivileged-port sysctl does not apply.  A `USER 65534` image
# could not bind those ports there.
#
# Upgrading here is a new image (docker pull, then recreate the container):
# SIGUSR2 is refused while edge is PID 1, as the container would lose its
# init when the old process exits.

FROM debian:12-slim AS build
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends make musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The sources, as the Makefile's SRC lists them (test/80-ship.bats checks).
COPY Makefile edge.h edge.c status.c poll.c handover.c conn.c listen.c \
     stats.c iptab.c rate.c buf.c pipes.c resolve.c sys.c log.c notify.c conf.c \
     proxyv2.c sni.c val.c nets.c addr.c edge.conf ./
# The image's config: the sample, plus the drop and the status endpoint
# that HEALTHCHECK asks.  `edge -t` refuses a broken one at build time.
RUN make static \
 && printf '\n# Added by the Dockerfile.\nuser = 65534:65534\nstatus.listen = 127.0.0.1:9901\n' >> edge.conf \
 && ./edge -t -c edge.conf

FROM scratch
COPY --from=build /src/edge /edge
COPY --from=build /src/edge.conf /etc/edge/edge.conf
EXPOSE 25 465 587 143 993 443
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 \
  CMD ["/edge", "probe", "127.0.0.1:9901"]
ENTRYPOINT ["/edge"]
CMD ["-c", "/etc/edge/edge.conf"]
