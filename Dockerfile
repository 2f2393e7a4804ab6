# POP3 Playground: a static binary on a distroless, non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum* ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/pop3playground ./cmd/pop3playground

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pop3playground /usr/local/bin/pop3playground
# Listen on every interface inside the container.
ENV POP3PG_POP3_ADDR=:65000 POP3PG_HTTP_ADDR=:8080
EXPOSE 65000 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/pop3playground"]
