import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The gateway package version, read from its package.json. */
export const GATEWAY_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
