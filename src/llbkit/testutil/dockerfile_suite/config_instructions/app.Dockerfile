ARG BASE
FROM ${BASE}
LABEL org.opencontainers.image.title="suite" maintainer="llbkit"
EXPOSE 8080/tcp 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGTERM
ENV GREETING="hello world"
WORKDIR /srv
ENTRYPOINT ["sh", "-c", "echo \"$GREETING from $(pwd) $0 $@\"", "entry"]
CMD ["arg1"]
