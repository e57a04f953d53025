import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { type ExitStatus, exitOf, isRunning, releasePath, trackChild, trackPath } from './child-reaper';
import { freePort } from './ports';

/** The nginx configuration docker-compose runs, used here unchanged. */
const NGINX_CONF = path.join(__dirname, '..', '..', 'deploy', 'nginx', 'nginx.conf');

/**
 * A real nginx in front of gateway replicas, with deploy/nginx/nginx.conf as it is: only the two
 * files it includes differ from docker-compose (the replicas' addresses and the port). It runs as one
 * process (`master_process off`), so killing it leaves no worker behind.
 */
export class NginxProcess {
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly child: ReturnType<typeof spawn>,
    private readonly exited: Promise<ExitStatus>,
  ) {}

  /** @param listenPort the port to listen on (one reserved with `freePort()` before); default: a free one. */
  static async start(upstreamPorts: readonly number[], listenPort?: number): Promise<NginxProcess> {
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'openclaw-nginx-'));
    trackPath(dir);
    const port = listenPort ?? (await freePort());
    fs.copyFileSync(NGINX_CONF, path.join(dir, 'nginx.conf'));
    fs.writeFileSync(
      path.join(dir, 'openclaw-upstream.conf'),
      [
        'upstream openclaw_gateways {',
        '  least_conn;',
        // As in deploy/nginx/compose/openclaw-upstream.conf (which says why max_fails=0).
        ...upstreamPorts.map((p) => `  server 127.0.0.1:${p} max_fails=0;`),
        '  keepalive 32;',
        '}',
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(dir, 'openclaw-listen.conf'), `listen 127.0.0.1:${port};\n`);
    // nginx opens /dev/stdout for its access log: a file, not a pipe of this process.
    const log = fs.openSync(path.join(dir, 'nginx.log'), 'a');
    const child = spawn(
      'nginx',
      ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off; master_process off;'],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    trackChild(child, `nginx on port ${port}`);
    const exited = exitOf(child);
    const nginx = new NginxProcess(port, dir, child, exited);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (!isRunning(child)) throw new Error(`nginx exited before it listened:\n${nginx.logs()}`);
      if (await listening(port)) return nginx;
      if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port}:\n${nginx.logs()}`);
      await delay(50);
    }
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Its error and access log. */
  logs(): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'nginx.log'), 'utf8');
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    if (isRunning(this.child)) this.child.kill('SIGTERM');
    const escalation = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(escalation);
    await releasePath(this.dir);
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
