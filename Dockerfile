# silo's production image: the silo binary (cgo, for MuPDF) and the atlas CLI.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY tools/atlas/go.mod tools/atlas/go.sum tools/atlas/
RUN cd tools/atlas && go mod download
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make atlas && go build -trimpath -ldflags="-s -w" -o bin/silo .

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/bin/silo /src/bin/atlas /usr/local/bin/
ENV DATA_DIR=/data ATLAS_BIN=/usr/local/bin/atlas MIGRATE_ON_START=true PORT=8080
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["silo"]
CMD ["serve"]
