# syntax=docker/dockerfile:1
# The Dataverket control plane: one image for `dv api`, `dv controller` and `dv worker`
# (the chart in charts/dataverket picks the subcommand). Build from the repository root:
#
#   docker build -t dataverket:dev .
#   docker run --rm dataverket:dev --help

ARG NODE_IMAGE=node:24-bookworm-slim

# Compiles the TypeScript sources (src, controllers, crds) with tsc -p tsconfig.build.json into dist/.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY controllers ./controllers
COPY crds ./crds
RUN npm run build

# Production dependencies only, the compiled code, and the files it reads at run time.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# pg_dump for `dv db backup` (run by the API process), pg_restore and psql for `dv db restore`.
# They must be of the server's major version or newer. Debian bookworm ships 15: for a newer
# server, name a package from a repository the build can reach (--build-arg PG_CLIENT=…), or put
# the tools on a volume and set DV_PG_BIN_DIR.
ARG PG_CLIENT=postgresql-client
RUN apt-get update && apt-get install -y --no-install-recommends ${PG_CLIENT} \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional: the pinned Node.js of optionalDependencies is for machines whose own Node.js
# is older; this image's is the LTS already.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# SQL migrations, applied by every process at start (found from package.json's directory).
COPY src/db/migrations ./src/db/migrations
# The default platform configuration (DV_PLATFORM_CONFIG_DIR), used when the controller does not
# read the custom resources from a cluster.
COPY config/platform ./config/platform
# Non-root, numeric so Kubernetes can verify runAsNonRoot; the file system may be read-only.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["--help"]
