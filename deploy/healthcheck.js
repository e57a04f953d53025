// Container health check: GET /healthz of the process in this container, exit 0 when it answers 200.
// The port: the first argument, else OPENCLAW_HEALTHCHECK_PORT, else the gateway's OPENCLAW_PORT
// (18789). Workers answer on OPENCLAW_WORKER_PORT (18790): pass it.
const port = process.argv[2] || process.env.OPENCLAW_HEALTHCHECK_PORT || process.env.OPENCLAW_PORT || '18789';
fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2500) }).then(
  (response) => process.exit(response.ok ? 0 : 1),
  () => process.exit(1),
);
