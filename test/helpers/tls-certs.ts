import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { releasePath, trackPath } from './child-reaper';

const run = promisify(execFile);

/** What the server certificate of {@link createTestCertificates} is valid for (its subjectAltName). */
const SERVER_NAMES = 'IP:127.0.0.1,DNS:localhost';

/** A throwaway CA and a server certificate it signed, as PEM files in a directory of their own. */
export interface TestCertificates {
  /** The directory holding every file below. */
  dir: string;
  /** The CA's certificate: what a client must trust (e.g. through `NODE_EXTRA_CA_CERTS`). */
  caFile: string;
  /** The server certificate, for 127.0.0.1 and localhost, signed by the CA. */
  certFile: string;
  /** The server certificate's private key, unencrypted. */
  keyFile: string;
  /** Deletes the directory. Safe to call more than once. */
  remove(): Promise<void>;
}

/**
 * Makes a private CA and a server certificate for 127.0.0.1 and localhost with `openssl`, valid for a
 * day, with P-256 keys (quick to generate). The directory is removed by `remove()`, or when the test
 * process exits if a test forgets to.
 *
 * @example
 * ```ts
 * const certs = await createTestCertificates();
 * const redis = await RedisServerProcess.start({ tls: certs });
 * // clients trust certs.caFile
 * await redis.stop();
 * await certs.remove();
 * ```
 */
export async function createTestCertificates(): Promise<TestCertificates> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'openclaw-tls-'));
  trackPath(dir);
  const file = (name: string): string => path.join(dir, name);
  const certs: TestCertificates = {
    dir,
    caFile: file('ca.crt'),
    certFile: file('server.crt'),
    keyFile: file('server.key'),
    remove: () => releasePath(dir),
  };
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    // `req -x509` marks the certificate as a CA (basicConstraints CA:TRUE).
    await openssl(['req', '-x509', ...newKey, '-keyout', file('ca.key'), '-out', certs.caFile, '-days', '1'], {
      subject: '/CN=openclaw test CA',
    });
    await openssl(['req', ...newKey, '-keyout', certs.keyFile, '-out', file('server.csr')], {
      subject: '/CN=localhost',
    });
    await fs.promises.writeFile(
      file('server.ext'),
      `subjectAltName=${SERVER_NAMES}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
    );
    await openssl([
      'x509',
      '-req',
      '-in',
      file('server.csr'),
      '-CA',
      certs.caFile,
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      file('server.ext'),
      '-out',
      certs.certFile,
    ]);
  } catch (error) {
    await certs.remove();
    throw error;
  }
  return certs;
}

/** Runs `openssl <args>` (with `-subj` when `subject` is given); rejects quoting its stderr. */
async function openssl(args: readonly string[], options: { subject?: string } = {}): Promise<void> {
  const full = options.subject === undefined ? [...args] : [...args, '-subj', options.subject];
  try {
    await run('openssl', full);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    const reason = stderr || (error instanceof Error ? error.message : String(error));
    throw new Error(`openssl ${args[0]} failed: ${reason}`);
  }
}
