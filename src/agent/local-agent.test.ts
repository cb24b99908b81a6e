import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import type { Runtime } from '../runtime/index.js';
import { AgentRegistry } from './agent.js';
import { LocalAgent, syncJournalOf } from './local-agent.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'understudy-agent-'));
  dirs.push(d);
  return d;
}

/** The local agent's file and host work needs no runtime; a runtime call would throw. */
const agent = new LocalAgent({ runtime: {} as Runtime });

describe('LocalAgent', () => {
  it('replaces a target state directory by an owner-only copy of the source', async () => {
    const root = tmp();
    const src = join(root, 'a');
    const dst = join(root, 'b');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'sub', 'data'), 'primary');
    mkdirSync(dst);
    writeFileSync(join(dst, 'stale'), 'old');
    await agent.snapshotState({ host: 'local', stateDir: src }, dst);
    expect(readFileSync(join(dst, 'sub', 'data'), 'utf8')).toBe('primary');
    expect(existsSync(join(dst, 'stale'))).toBe(false);
    expect(statSync(dst).mode & 0o777).toBe(0o700);
  });

  it('refuses to copy a state directory from another host (not supported yet)', async () => {
    const root = tmp();
    await expect(
      agent.snapshotState({ host: 'other', stateDir: join(root, 'a') }, join(root, 'b')),
    ).rejects.toMatchObject({ code: ErrorCode.StateDir });
    expect(existsSync(join(root, 'b'))).toBe(false);
  });

  it('prepares a sync target and its journal owner-only, and removes both', async () => {
    const dir = join(tmp(), 'echo');
    await agent.prepareSyncTarget(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(syncJournalOf(dir)).mode & 0o777).toBe(0o700);
    await agent.removeState(dir);
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(syncJournalOf(dir))).toBe(false);
  });

  it('reports the differences between two state directories', async () => {
    const root = tmp();
    mkdirSync(join(root, 'a'));
    mkdirSync(join(root, 'b'));
    writeFileSync(join(root, 'a', 'f'), '1');
    writeFileSync(join(root, 'b', 'f'), '1');
    expect(await agent.compareState(join(root, 'a'), join(root, 'b'))).toEqual([]);
    writeFileSync(join(root, 'b', 'f'), '2');
    expect((await agent.compareState(join(root, 'a'), join(root, 'b'))).length).toBeGreaterThan(0);
  });

  it('reports host facts as finite, non-negative numbers', async () => {
    const facts = await agent.hostFacts();
    expect(Number.isFinite(facts.diskLatencyMs) && facts.diskLatencyMs >= 0).toBe(true);
    expect(Number.isFinite(facts.loadPerCore) && facts.loadPerCore >= 0).toBe(true);
  });
});

describe('AgentRegistry', () => {
  it('finds the agent and the address of an instance by its host, and refuses an unknown host', () => {
    const other = new LocalAgent({ runtime: {} as Runtime, host: 'h2', address: '10.1.2.3' });
    const reg = new AgentRegistry([agent, other]);
    expect(reg.of({ host: 'h2' })).toBe(other);
    expect(reg.addressOf({ host: 'local' })).toBe('127.0.0.1');
    expect(reg.addressOf({ host: 'h2' })).toBe('10.1.2.3');
    expect(() => reg.get('nowhere')).toThrow(expect.objectContaining({ code: ErrorCode.NotFound }));
  });
});
