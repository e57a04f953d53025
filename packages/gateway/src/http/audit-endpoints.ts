import { CLUSTER_ADMIN, GatewayError, summarizeAudit, UNAUTHENTICATED_TENANT } from '@openclaw/core';
import { type Endpoints, noEndpoint, requireClusterAdmin } from './endpoint';
import { epochTime, send } from './http-io';

/** The span of `GET /v1/audit/report` without `since`: the 24 hours before `until` (default: now). */
const DEFAULT_REPORT_SPAN_MS = 24 * 3_600_000;

/**
 * `GET /v1/audit?tenant=&limit=` (the last entries), `GET /v1/audit?tenant=&since=&until=` (entries
 * between two times: durations ago such as `1h`, ISO times or epoch ms; at most `limit`, 10,000 by
 * default: the next page starts `after=` the last entry's id), `GET
 * /v1/audit/report?tenant=&since=&until=` (a summary of the span; without `since`, the 24 hours
 * before `until`), `GET /v1/audit/verify?tenant=` (the chain). A tenant's admins read their own
 * tenant; cluster administrators ({@link CLUSTER_ADMIN}) may name any tenant, verify all of them,
 * and see failed logins in reports.
 */
export const auditEndpoints: Endpoints = async (replica, request) => {
  const { res, principal, path, method, query } = request;
  if (method !== 'GET') throw noEndpoint(request);
  replica.authorizer.require(principal, 'admin');
  const asked = query.get('tenant');
  if (asked !== null && asked !== principal.tenant) {
    requireClusterAdmin(replica, principal, "another tenant's audit trail");
  }
  const everyTenant = replica.authorizer.can(principal, CLUSTER_ADMIN);
  const audit = replica.audit;
  await audit.drain();
  if (path === '/v1/audit/verify') {
    const tenants = asked !== null ? [asked] : everyTenant ? await audit.tenants() : [principal.tenant];
    const results = await Promise.all(tenants.map((t) => audit.verify(t)));
    return send(res, 200, { ok: results.every((r) => r.ok), tenants: results });
  }
  const tenant = asked ?? principal.tenant;
  const since = query.get('since');
  const until = query.get('until');
  // One clock for both ends: `since=1h` and `until=5m` count back from the same moment.
  const now = Date.now();
  if (path === '/v1/audit/report') {
    const to = until === null ? now : epochTime(until, 'until', now);
    const from = since === null ? Math.max(0, to - DEFAULT_REPORT_SPAN_MS) : epochTime(since, 'since', now);
    const entries = await audit.read(tenant, String(from), String(to), 1_000_000);
    // Failed logins have no tenant: cluster administrators see them in their reports.
    const failed = everyTenant ? await audit.read(UNAUTHENTICATED_TENANT, String(from), String(to), 1_000_000) : [];
    return send(res, 200, summarizeAudit(tenant, { since: from, until: to }, entries, failed));
  }
  const after = query.get('after');
  if (since !== null || until !== null || after !== null) {
    const limit = limitOf(query.get('limit'), 10_000);
    let from = since === null ? '-' : String(epochTime(since, 'since', now));
    if (after !== null) {
      const id = /^(\d{1,16})-(\d{1,16})$/.exec(after);
      if (!id) throw new GatewayError('BAD_REQUEST', 'after: expected an audit entry id such as 1733212800000-0');
      // The page after an entry: from the id right after it, or from `since` if that is later.
      const next = `${id[1]}-${Number(id[2]) + 1}`;
      if (from === '-' || Number(id[1]) >= Number(from)) from = next;
    }
    const to = until === null ? '+' : String(epochTime(until, 'until', now));
    return send(res, 200, await audit.read(tenant, from, to, limit));
  }
  return send(res, 200, await audit.tail(tenant, limitOf(query.get('limit'), 50)));
};

/** The `limit` parameter: an integer from 1 to 10,000. */
function limitOf(text: string | null, fallback: number): number {
  const limit = Number(text ?? fallback);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new GatewayError('BAD_REQUEST', 'limit: expected an integer from 1 to 10000');
  }
  return limit;
}
