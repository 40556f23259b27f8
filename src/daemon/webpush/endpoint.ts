import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';

import ipaddr from 'ipaddr.js';
import { buildConnector } from 'undici';

/**
 * The one address policy for push endpoints (DESIGN §6), applied at subscribe time and at every dial. An address is
 * dialled only when ipaddr.js names no special range for it (loopback, private, linkLocal, uniqueLocal, ipv4Mapped,
 * rfc6145, rfc6052 (NAT64), 6to4, teredo, discard, deprecatedSiteLocal, reserved, …: its tables follow the IANA
 * special-purpose registries) and, for IPv6, when it lies in 2000::/3, the only block IANA allocates for global
 * unicast. The second rule refuses what the library leaves as plain `unicast` although no push service lives there:
 * the deprecated IPv4-compatible `::a.b.c.d` (RFC 4291 §2.5.5.1) and every other unallocated block.
 */
const globalUnicast6 = ipaddr.IPv6.parseCIDR('2000::/3');

/** Why the address must not be dialled, or undefined when it may be. */
export function addressProblem(address: string): string | undefined {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address.replace(/^\[|\]$/g, ''));
  } catch {
    return `${address} is not an IP address`;
  }
  const range = parsed.range();
  if (range !== 'unicast') return `${address} is a ${range} address`;
  if (parsed.kind() === 'ipv6' && !parsed.match(globalUnicast6)) return `${address} is outside global unicast (2000::/3)`;
  return undefined;
}

export class EndpointRefusedError extends Error {
  readonly code = 'EFORBIDDEN';
}

export interface EndpointPolicy {
  /** Dev and tests: http and every address are allowed (the scheme must still be http or https). */
  allowInsecure: boolean;
}

/**
 * Why an endpoint is refused, or undefined when it is acceptable. WHATWG URL parsing has already turned every
 * IPv4 spelling (`2130706433`, `0x7f.1`, `127.1`) into dotted quads and every IPv6 one into its canonical form, so
 * the literal check sees what the socket would dial.
 */
export function endpointProblem(endpoint: string, allowInsecure: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return 'the endpoint is not a URL';
  }
  if (url.username || url.password) return 'the endpoint must not carry user info';
  if (allowInsecure) return url.protocol === 'https:' || url.protocol === 'http:' ? undefined : 'the endpoint must be an http(s) URL';
  if (url.protocol !== 'https:') return 'the endpoint must be an https URL';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) return 'the endpoint has no host';
  if (host === 'localhost' || host.endsWith('.localhost')) return 'the endpoint must not be localhost';
  if (isIP(host)) {
    const problem = addressProblem(host);
    if (problem) return `the endpoint must not be a private, loopback or otherwise special-purpose address: ${problem}`;
  }
  return undefined;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for the push agent: resolves, then refuses when any address fails the policy, so a name that resolves
 * (or rebinds) to an internal address is never dialled. Node never calls it for an IP literal: `pushConnector`
 * checks those itself.
 */
export function safeLookup(hostname: string, options: object, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const list = addresses as LookupAddress[];
    for (const a of list) {
      const problem = addressProblem(a.address);
      if (problem) return callback(new EndpointRefusedError(`refusing to dial ${hostname}: ${problem}`), []);
    }
    if ((options as { all?: boolean }).all) return callback(null, list);
    callback(null, list[0]!.address, list[0]!.family);
  });
}

/**
 * The push agent's connector: every connection it opens passes the policy first, the scheme and a literal host
 * here, a resolved name in `safeLookup`. With `allowInsecure` it dials anything (dev flag, tests, the bench).
 */
export function pushConnector(policy: EndpointPolicy, tls: { rejectUnauthorized?: boolean } = {}): buildConnector.connector {
  if (policy.allowInsecure) return buildConnector({ ...tls });
  const connect = buildConnector({ ...tls, lookup: safeLookup });
  return (options, callback) => {
    const host = options.hostname.replace(/^\[|\]$/g, '');
    const problem = options.protocol !== 'https:' ? `${options.protocol} is not https` : isIP(host) ? addressProblem(host) : undefined;
    if (problem) return callback(new EndpointRefusedError(`refusing to dial ${options.hostname}: ${problem}`), null);
    connect(options, callback);
  };
}
