import { describe, expect, it } from 'vitest';

import { addressProblem, endpointProblem } from '../../src/daemon/webpush/endpoint.js';

// Every form from issue #16 and the IPv4/IPv6 special-purpose registries, as a stored row or a subscriber could spell
// it. `reason` matches what the refusal says, so a case cannot pass for the wrong reason.
const refused: Array<[endpoint: string, reason: RegExp]> = [
  ['https://127.0.0.1/push', /loopback/],
  ['https://127.1.2.3:8443/push', /loopback/],
  ['https://[::1]/push', /loopback/],
  ['https://2130706433/push', /127\.0\.0\.1 is a loopback/],
  ['https://0x7f000001/push', /127\.0\.0\.1 is a loopback/],
  ['https://0177.0.0.1/push', /127\.0\.0\.1 is a loopback/],
  ['https://127.1/push', /127\.0\.0\.1 is a loopback/],
  ['http://127.0.0.1/push', /https/],
  ['http://push.example.com/push', /https/],
  ['ftp://push.example.com/push', /https/],
  ['https://[::127.0.0.1]/push', /outside global unicast/],
  ['https://[::ffff:127.0.0.1]/push', /ipv4Mapped/],
  ['https://[::ffff:0:127.0.0.1]/push', /rfc6145/],
  ['https://[2002:7f00:1::]/push', /6to4/],
  ['https://[64:ff9b::7f00:1]/push', /rfc6052/],
  ['https://[64:ff9b:1::7f00:1]/push', /rfc6052/],
  ['https://[100::1]/push', /discard/],
  ['https://[fec0::1]/push', /deprecatedSiteLocal/],
  ['https://[fe80::1]/push', /linkLocal/],
  ['https://[fd00::1]/push', /uniqueLocal/],
  ['https://[ff02::1]/push', /multicast/],
  ['https://[::]/push', /unspecified/],
  ['https://[2001:db8::1]/push', /reserved/],
  ['https://[2001::1]/push', /teredo|reserved/],
  ['https://[5f00::1]/push', /segmentRouting/],
  ['https://10.1.2.3/push', /private/],
  ['https://172.16.0.1/push', /private/],
  ['https://192.168.1.1/push', /private/],
  ['https://169.254.169.254/latest', /linkLocal/],
  ['https://100.64.0.1/push', /carrierGradeNat/],
  ['https://0.0.0.0/push', /unspecified/],
  ['https://224.0.0.1/push', /multicast/],
  ['https://255.255.255.255/push', /broadcast/],
  ['https://192.0.2.1/push', /reserved/],
  ['https://198.18.0.1/push', /reserved/],
  ['https://240.0.0.1/push', /reserved/],
  ['https://localhost/push', /localhost/],
  ['https://push.localhost/push', /localhost/],
  ['https://user:pw@push.example.com/push', /user info/],
  ['not a url', /not a URL/],
];

const accepted = [
  'https://fcm.googleapis.com/fcm/send/abc',
  'https://web.push.apple.com/QH0',
  'https://updates.push.services.mozilla.com/wpush/v2/x',
  'https://8.8.8.8/push',
  'https://[2607:f8b0:4004:800::200e]/push',
];

describe('the push endpoint address policy', () => {
  it.each(refused)('refuses %s', (endpoint, reason) => {
    expect(endpointProblem(endpoint, false)).toMatch(reason);
  });

  it.each(accepted)('accepts %s', (endpoint) => {
    expect(endpointProblem(endpoint, false)).toBeUndefined();
  });

  it('with the dev flag, accepts loopback over http and https, and still refuses other schemes', () => {
    expect(endpointProblem('http://127.0.0.1:9/push', true)).toBeUndefined();
    expect(endpointProblem('https://[::1]:9/push', true)).toBeUndefined();
    expect(endpointProblem('ftp://127.0.0.1/push', true)).toMatch(/http\(s\)/);
  });

  it('checks resolved addresses as the literal ones', () => {
    for (const a of ['127.0.0.1', '::1', '::ffff:7f00:1', '::7f00:1', '10.0.0.1', 'fe80::1%eth0', 'fec0::1']) expect(addressProblem(a), a).toBeDefined();
    for (const a of ['8.8.8.8', '2607:f8b0:4004:800::200e']) expect(addressProblem(a), a).toBeUndefined();
    expect(addressProblem('not-an-ip')).toMatch(/not an IP/);
  });
});
