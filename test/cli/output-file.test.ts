import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BoundedOutputFile, describeOutput, formatBytes, parseByteSize } from '../../src/cli/output-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'starstream-output-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const lines = (path: string): string[] => readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');

describe('BoundedOutputFile', () => {
  it('rotates before a line would pass the limit, keeps the newest lines in the file and one older file, and counts the rest', async () => {
    const path = join(dir, 'nested', 'recs.jsonl');
    const file = await BoundedOutputFile.open(path, 30);
    // Each line is 10 bytes with its newline: three fit in 30.
    for (let i = 0; i < 10; i++) await file.writeLine(`line-${String(i).padStart(3, '0')}`);
    const summary = await file.close();
    assert.deepEqual(lines(path), ['line-009']);
    assert.deepEqual(lines(`${path}.1`), ['line-006', 'line-007', 'line-008']);
    assert.deepEqual(summary, { path, limitBytes: 30, lines: 1, rotatedLines: 3, droppedLines: 6 });
    assert.equal(describeOutput(summary), `${path} (the last 1; 3 before them in ${path}.1, the 6 before those dropped: --out-limit 30 B per file)`);
  });

  it('a line longer than the limit still goes in whole, alone in its file', async () => {
    const path = join(dir, 'long.jsonl');
    const file = await BoundedOutputFile.open(path, 4);
    await file.writeLine('0123456789');
    await file.writeLine('ab');
    await file.close();
    assert.deepEqual(lines(`${path}.1`), ['0123456789']);
    assert.deepEqual(lines(path), ['ab']);
  });

  it('0 is unbounded; a rotated file of an earlier run is removed at open', async () => {
    const path = join(dir, 'unbounded.jsonl');
    writeFileSync(`${path}.1`, 'old run\n');
    const file = await BoundedOutputFile.open(path, 0);
    assert.equal(existsSync(`${path}.1`), false);
    for (let i = 0; i < 1_000; i++) await file.writeLine(`x${i}`);
    const summary = await file.close();
    assert.equal(lines(path).length, 1_000);
    assert.equal(describeOutput(summary), path, 'nothing rotated: just the path');
  });
});

describe('--out-limit sizes', () => {
  it('parses bytes, SI and binary units, and refuses anything else', () => {
    assert.equal(parseByteSize('0'), 0);
    assert.equal(parseByteSize('1500'), 1_500);
    assert.equal(parseByteSize('64MB'), 64_000_000);
    assert.equal(parseByteSize('64mb'), 64_000_000);
    assert.equal(parseByteSize('256MiB'), 256 * 1024 ** 2);
    assert.equal(parseByteSize('1.5 GiB'), 1.5 * 1024 ** 3);
    assert.equal(parseByteSize('500k'), 500_000);
    for (const bad of ['', 'ten', '-1MB', '5TB', '1e6', 'MB']) assert.equal(parseByteSize(bad), null, bad);
  });

  it('formats a size in the largest unit that divides it', () => {
    assert.equal(formatBytes(256 * 1024 ** 2), '256 MiB');
    assert.equal(formatBytes(1_000_000), '1 MB');
    assert.equal(formatBytes(2 * 1024 ** 3), '2 GiB');
    assert.equal(formatBytes(30), '30 B');
  });
});
