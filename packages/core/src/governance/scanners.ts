/** One kind of sensitive text a scanner looks for. */
export interface Detector {
  kind: string;
  pattern: RegExp;
  /** A second check of a candidate (Luhn for card numbers, mod 97 for IBANs). */
  valid?: (match: string) => boolean;
}

/**
 * Secrets: API keys, private keys, bearer tokens, cloud credentials. Every pattern runs on senders'
 * text of up to the frame limit, so each is linear in it: a key's body stops at the next BEGIN (else
 * each BEGIN without an END would scan to the end of the text).
 */
export const SECRET_DETECTORS: readonly Detector[] = [
  {
    kind: 'private-key',
    pattern: /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----(?:(?!-----BEGIN )[\s\S])*?-----END (?:[A-Z]+ )?PRIVATE KEY-----/g,
  },
  { kind: 'aws-access-key', pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g },
  { kind: 'aws-secret-key', pattern: /\baws_secret_access_key\s*[=:]\s*[A-Za-z0-9/+=]{40}\b/gi },
  { kind: 'gcp-api-key', pattern: /\bAIza[0-9A-Za-z_-]{35}\b/g },
  { kind: 'github-token', pattern: /\bgh[pousr]_[A-Za-z0-9]{36,}\b/g },
  { kind: 'slack-token', pattern: /\bxox[abprs]-[A-Za-z0-9-]{10,}\b/g },
  { kind: 'stripe-key', pattern: /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b/g },
  { kind: 'openclaw-api-key', pattern: /\bock_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\b/g },
  { kind: 'jwt', pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b/g },
  { kind: 'bearer-token', pattern: /\bBearer\s+[A-Za-z0-9._~+/-]{20,}=*/g },
];

/**
 * Personal data: emails, card numbers (Luhn), phone numbers, IBANs (mod 97). An email starts where a
 * run of local-part characters starts, so each run is scanned once (from every word boundary in it,
 * `a.a.a.a…` without an `@` took time quadratic in its length).
 */
export const PII_DETECTORS: readonly Detector[] = [
  { kind: 'email', pattern: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b/g },
  { kind: 'card', pattern: /\b(?:\d[ -]?){12,18}\d\b/g, valid: (m) => luhn(m.replace(/\D/g, '')) },
  { kind: 'iban', pattern: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g, valid: (m) => ibanValid(m.replace(/ /g, '')) },
  { kind: 'phone', pattern: /(?<![\w+])\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,3}\b/g },
];

/** What a scan found: the kinds, and the value with every finding masked. */
export interface ScanResult {
  found: string[];
  masked: unknown;
}

/** Masks every string of a JSON value that a detector matches; keys are scanned too (masked keys keep their place). */
export function scan(value: unknown, detectors: readonly Detector[]): ScanResult {
  const found = new Set<string>();
  const maskText = (text: string): string => {
    let out = text;
    for (const d of detectors) {
      out = out.replace(d.pattern, (match) => {
        if (d.valid && !d.valid(match)) return match;
        found.add(d.kind);
        return `[redacted:${d.kind}]`;
      });
    }
    return out;
  };
  const walk = (v: unknown, depth: number): unknown => {
    if (depth > 64) return v;
    if (typeof v === 'string') return maskText(v);
    if (Array.isArray(v)) return v.map((item) => walk(item, depth + 1));
    if (v !== null && typeof v === 'object') {
      // Defined, not assigned: a sender's key `__proto__` stays a key of the copy.
      return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item, depth + 1)]));
    }
    return v;
  };
  const masked = walk(value, 0);
  return { found: [...found], masked };
}

/** The Luhn checksum of a card number. */
export function luhn(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** The ISO 13616 check of an IBAN (mod 97 = 1). */
export function ibanValid(iban: string): boolean {
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const code = ch >= 'A' && ch <= 'Z' ? String(ch.charCodeAt(0) - 55) : ch;
    for (const digit of code) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}
