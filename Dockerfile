# syntax=docker/dockerfile:1
# Tally's image: one image, every role. The role is the command: `migrate` (run once before the
# others, and on every upgrade), `collector`, `processor`, `query`, or `start` (all three in one
# process, on the embedded SQLite default). Node 24 runs the TypeScript sources directly (type
# stripping), so there is no build step: the image is the production dependencies plus src/.
#
#   docker build -t tally .
#   docker run --rm -p 8080:8080 -v tally-data:/data tally            # embedded, all roles
#   docker run --rm --env-file tally.env tally migrate                 # distributed: see deploy/

ARG NODE_IMAGE=node:24-slim

# Production dependencies only, installed exactly as locked. None has an install script or needs a
# compiler (native parts come as prebuilt optional packages), so the slim image suffices.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    TALLY_HOST=0.0.0.0 \
    TALLY_PORT=8080 \
    TALLY_DATA_DIR=/data
WORKDIR /app
# Owned by root and read-only to the app user: the process cannot rewrite its own code.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY src ./src
# The embedded deployment's SQLite files live in /data (mount a volume there); the distributed
# roles keep nothing on disk. The official image's `node` user (uid 1000) runs the process.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 8080
# slim has no curl: Node's own fetch probes the liveness endpoint every role serves.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.TALLY_PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "src/cli/main.ts"]
CMD ["start"]
