# POP3 Playground: a static binary on a distroless, non-root base.
#   docker build -t pop3playground .
#   docker run -p 65000:65000 -p 8080:8080 -p 2525:2525 -p 65110:65110 -p 2526:2526 pop3playground
# An organiser's world, bulletins and lessons go in /world (see README,
# "Host a workshop").
# Base images by their full names: podman and buildah do not guess a
# registry for a short name.
FROM docker.io/library/golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/pop3playground ./cmd/pop3playground

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pop3playground /usr/local/bin/pop3playground
# Listen on every interface inside the container; the page names the host
# people use (set POP3PG_PUBLIC_HOST to the workshop's name).
ENV POP3PG_POP3_ADDR=:65000 POP3PG_HTTP_ADDR=:8080 POP3PG_SMTP_ADDR=:2525 \
    POP3PG_LAB_POP3_ADDR=:65110 POP3PG_LAB_SMTP_ADDR=:2526
EXPOSE 65000 8080 2525 65110 2526
VOLUME ["/world"]
WORKDIR /world
USER nonroot:nonroot
HEALTHCHECK --interval=30s --timeout=6s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/pop3playground", "--probe", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/pop3playground"]
