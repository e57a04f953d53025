import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join } from 'node:path';

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The page may load only its own files and talk only to this gateway (its WebSocket and HTTP API);
 * it may not be framed. Every value it shows is set as text, never as markup.
 */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/**
 * Mission Control's files (`@openclaw/dashboard`), read once at start and served from memory under
 * `/dashboard/`. They are public: the page holds no data until the operator signs in with a key.
 */
export class DashboardAssets {
  private readonly assets = new Map<string, Asset>();
  /** Why there is no dashboard, when its package is not built. */
  readonly missing: string | undefined;

  constructor(private readonly settings: { jaegerUrl: string; version: string }) {
    let dir: string;
    try {
      dir = join(dirname(require.resolve('@openclaw/dashboard/package.json')), 'dist');
      for (const name of readdirSync(dir)) {
        const type = TYPES[extname(name)];
        if (type === undefined) continue;
        const body = readFileSync(join(dir, name));
        this.assets.set(name, { body, type, etag: `"${createHash('sha1').update(body).digest('base64url')}"` });
      }
    } catch {
      // Reported below: the gateway still serves everything else.
    }
    this.missing = this.assets.has('index.html')
      ? undefined
      : 'Mission Control is not built: run `npm run build` (package @openclaw/dashboard)';
  }

  /**
   * Serves `GET /dashboard/...`, and sends `GET /` there.
   * @returns whether the request was for the dashboard.
   */
  serve(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return false;
    if (path === '/' || path === '/dashboard') {
      res.writeHead(302, { location: '/dashboard/', 'cache-control': 'no-store', ...SECURITY_HEADERS }).end();
      return true;
    }
    if (!path.startsWith('/dashboard/')) return false;
    const name = path === '/dashboard/' ? 'index.html' : path.slice('/dashboard/'.length);
    if (name === 'config.json') {
      this.send(req, res, 200, {
        body: Buffer.from(
          JSON.stringify({ jaegerUrl: this.settings.jaegerUrl || null, version: this.settings.version }),
        ),
        type: 'application/json; charset=utf-8',
        etag: '',
      });
      return true;
    }
    const asset = this.assets.get(name);
    if (!asset) {
      const message = this.missing ?? `no dashboard file '${name.slice(0, 64)}'`;
      this.send(req, res, 404, { body: Buffer.from(`${message}\n`), type: 'text/plain; charset=utf-8', etag: '' });
      return true;
    }
    if (asset.etag !== '' && req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, { etag: asset.etag, ...SECURITY_HEADERS }).end();
      return true;
    }
    this.send(req, res, 200, asset);
    return true;
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, asset: Asset): void {
    res.writeHead(status, {
      'content-type': asset.type,
      'content-length': asset.body.length,
      // Revalidated every time (by ETag): a gateway upgrade is picked up at the next load.
      'cache-control': 'no-cache',
      ...(asset.etag === '' ? {} : { etag: asset.etag }),
      ...SECURITY_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
  }
}
