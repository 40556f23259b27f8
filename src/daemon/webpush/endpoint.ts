import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/** Addresses a push must never be dialled to: loopback, private, link-local, multicast, unspecified, CGNAT, ULA. */
const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96]] as const) blocked.addSubnet(net, prefix, 'ipv6');

export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  // An IPv4-mapped IPv6 address is checked as the IPv4 address it carries.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1]!, 'ipv4');
  return blocked.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/** Why an endpoint is refused, or undefined when it is acceptable. */
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
  if (isIP(host) && isForbiddenAddress(host)) return 'the endpoint must not be a private, loopback or link-local address';
  return undefined;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for the push agent: resolves, then refuses forbidden addresses, so a name that resolves (or rebinds) to
 * an internal address is never dialled.
 */
export function safeLookup(hostname: string, options: object, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const list = addresses as LookupAddress[];
    const bad = list.find((a) => isForbiddenAddress(a.address));
    if (bad) return callback(Object.assign(new Error(`refusing to dial ${hostname}: ${bad.address} is a private or loopback address`), { code: 'EFORBIDDEN' }), []);
    if ((options as { all?: boolean }).all) return callback(null, list);
    callback(null, list[0]!.address, list[0]!.family);
  });
}
