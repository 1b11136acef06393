# sidehook in a container: a static binary on a distroless base, run as a
# non-root user, its data in the volume /data.
#
#   docker build -t sidehook .
#   docker run --rm -p 8081:8081 -v sidehook:/data sidehook receive --listen 0.0.0.0:8081 --admin-token "$TOKEN"

FROM golang:1.26 AS build
WORKDIR /src
# The modules first, so a change to the code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO off: a static binary that needs no libc in the final image.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sidehook . \
	&& mkdir -p /out/data && chown 65532:65532 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sidehook /usr/local/bin/sidehook
# /data is the working directory, so the default data directories
# (./.sidehook/relay, ./.sidehook/receiver) are in the volume; owned by the
# image's nonroot user (65532), as a new named volume then is too.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
VOLUME /data
USER nonroot:nonroot
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/sidehook"]
CMD ["help"]
