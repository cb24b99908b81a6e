import { describe, expect, it } from 'vitest';
import { ErrorCode, isUnderstudyError } from '../errors/index.js';
import { isEtcdUrl, parseEtcdUrl } from './etcd-url.js';

function usageError(url: string): string {
  try {
    parseEtcdUrl(url);
  } catch (err) {
    expect(isUnderstudyError(err, ErrorCode.Usage)).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`'${url}' was accepted`);
}

describe('parseEtcdUrl', () => {
  it('reads one or several endpoints, with the default port where none is given', () => {
    expect(parseEtcdUrl('etcd://127.0.0.1:2379')).toEqual({ endpoints: ['127.0.0.1:2379'] });
    expect(parseEtcdUrl('etcd://a:1,b,[::1]:3')).toEqual({ endpoints: ['a:1', 'b:2379', '[::1]:3'] });
  });

  it('reads a key prefix from the path, always ending in a slash', () => {
    expect(parseEtcdUrl('etcd://h:1/prod')).toEqual({ endpoints: ['h:1'], prefix: 'prod/' });
    expect(parseEtcdUrl('etcd://h:1/a/b/')).toEqual({ endpoints: ['h:1'], prefix: 'a/b/' });
    expect(parseEtcdUrl('etcd://h:1/')).toEqual({ endpoints: ['h:1'] });
  });

  it('says what is wrong and where for bad input', () => {
    expect(usageError('http://h:1')).toContain('must start with etcd://');
    expect(usageError('etcd://')).toContain('no endpoint');
    expect(usageError('etcd://a:1,,b:2')).toContain('endpoint 2');
    expect(usageError('etcd://a:99999')).toContain('not 1-65535');
    expect(usageError('etcd://a b:1')).toContain('not host[:port]');
    expect(usageError('etcd://u:p@h:1')).toContain('credentials');
    expect(usageError('etcd://h:1/a/../b')).toContain("'..'");
    expect(usageError('etcd://h:1?x=1')).toContain('query');
  });

  it('tells etcd connection strings from other store values', () => {
    expect(isEtcdUrl('etcd://h:1')).toBe(true);
    expect(isEtcdUrl('./data')).toBe(false);
  });
});
