import { describe, expect, it } from 'vitest';

import { describeError } from '../../src/cli/base.js';
import { ConfigError, parseHttpAddress, parsePostgresUrl } from '../../src/daemon/config.js';

describe('parseHttpAddress', () => {
  it('accepts host:port, :port and [v6]:port', () => {
    expect(parseHttpAddress('127.0.0.1:3000')).toEqual({ host: '127.0.0.1', port: 3000 });
    expect(parseHttpAddress(':8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(parseHttpAddress('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseHttpAddress('localhost:80')).toEqual({ host: 'localhost', port: 80 });
  });

  it('rejects nonsense with a ConfigError naming the flag', () => {
    for (const bad of ['nonsense', '1.2.3.4', 'host:99999', '[zz]:1', 'a b:1', '']) {
      expect(() => parseHttpAddress(bad), bad).toThrow(ConfigError);
      expect(() => parseHttpAddress(bad), bad).toThrow(/--http-address/);
    }
  });
});

describe('parsePostgresUrl', () => {
  it('accepts postgres and postgresql URLs and rejects others', () => {
    expect(parsePostgresUrl('postgres://u:p@h:5432/d')).toBe('postgres://u:p@h:5432/d');
    expect(parsePostgresUrl('postgresql://h/d')).toBe('postgresql://h/d');
    expect(() => parsePostgresUrl('mysql://h/d')).toThrow(/scheme must be postgres/);
    expect(() => parsePostgresUrl('not a url')).toThrow(ConfigError);
  });
});

describe('describeError', () => {
  it('joins causes into one line without repeats', () => {
    const err = new Error('cannot use PostgreSQL at h:1/d', { cause: new Error('connect ECONNREFUSED\n127.0.0.1:1') });
    expect(describeError(err)).toBe('cannot use PostgreSQL at h:1/d: connect ECONNREFUSED 127.0.0.1:1');
    const agg = Object.assign(new AggregateError([new Error('inner reason')], ''), {});
    expect(describeError(agg)).toBe('inner reason');
  });
});
