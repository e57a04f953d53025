import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { freePort } from './ports';
import { withTimeout } from './wait';

/** A real OAuth 2.0 authorization server (oidc-provider, ESM) in a child process: see oidc-server.mjs. */
export class OAuthServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly issuer: string,
  ) {}

  static async start(): Promise<OAuthServer> {
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(__dirname, 'oidc-server.mjs'), String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const ready = new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        output += d.toString();
        const m = /ready (\S+)/.exec(output);
        if (m) resolve(m[1]!);
      });
      child.stderr!.on('data', (d: Buffer) => {
        output += d.toString();
      });
      child.once('exit', (code) => reject(new Error(`the authorization server exited (${code}):\n${output}`)));
    });
    return new OAuthServer(child, await withTimeout(ready, 15_000, 'the authorization server to start'));
  }

  /** A client-credentials access token of client `svc` for a resource (audience). */
  async token(resource: string): Promise<string> {
    const response = await fetch(`${this.issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('svc:svc-secret').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'agent:invoke:echo' }),
    });
    const body = (await response.json()) as { access_token?: string };
    if (!body.access_token) throw new Error(`no token: ${JSON.stringify(body)}`);
    return body.access_token;
  }

  /** Revokes a token (RFC 7009) as its client. */
  async revoke(token: string): Promise<void> {
    const response = await fetch(`${this.issuer}/token/revocation`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('svc:svc-secret').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token }),
    });
    if (!response.ok) throw new Error(`revocation failed: HTTP ${response.status}`);
  }

  /** Introspects a token (RFC 7662) as the resource server (client `gateway`) does. */
  async introspect(token: string): Promise<{ active: boolean; exp?: number }> {
    const response = await fetch(`${this.issuer}/token/introspection`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('gateway:gateway-secret').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token }),
    });
    if (!response.ok) throw new Error(`introspection failed: HTTP ${response.status}`);
    return (await response.json()) as { active: boolean; exp?: number };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}
