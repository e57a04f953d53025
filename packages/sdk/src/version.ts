import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The SDK package version, read from its package.json; sent to the gateway in `hello`. */
export const SDK_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
