import { describe, expect, it } from 'vitest';
import { standbyListen } from './standby-control.js';

describe("a standby's API address", () => {
  it("takes a port of its own on the configured host: a fixed port stays the leader's", () => {
    expect(standbyListen('127.0.0.1:7070')).toBe('127.0.0.1:0');
    expect(standbyListen('[::1]:7070')).toBe('[::1]:0');
    expect(standbyListen('0.0.0.0:0')).toBe('0.0.0.0:0');
  });
});
