/** A linked region: its name and the base URL of its gateways (their load balancer). */
export interface RegionPeer {
  name: string;
  url: string;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

/**
 * Parses `OPENCLAW_REGION_PEERS`: `name=url` pairs separated by commas.
 * @throws {Error} naming the pair that is not valid.
 */
export function parseRegionPeers(text: string): RegionPeer[] {
  const peers: RegionPeer[] = [];
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim();
    const url = part
      .slice(eq + 1)
      .trim()
      .replace(/\/+$/, '');
    if (eq < 0 || !NAME.test(name)) {
      throw new Error(`${JSON.stringify(part)}: expected name=url, the name of lowercase letters, digits and "-"`);
    }
    if (!/^https?:\/\/[^\s/]+$/.test(url)) {
      throw new Error(`${JSON.stringify(part)}: expected an http:// or https:// URL with no path`);
    }
    if (peers.some((p) => p.name === name)) throw new Error(`region '${name}' is named twice`);
    peers.push({ name, url });
  }
  return peers;
}

/** Whether a text is a valid region name. */
export function isRegionName(text: string): boolean {
  return NAME.test(text);
}
