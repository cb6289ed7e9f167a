import { existsSync, readFileSync } from 'node:fs';
import { checkpointMeta } from '../../src/store/embedded/checkpoint.ts';
import { decodeSnapshot } from '../../src/store/embedded/state/snapshot.ts';
import { eventually } from '../helpers.ts';

/**
 * Where an embedded checkpoint resumes partition 0 of `topic` (the file at `path`, or `bytes` read from it
 * earlier); null when there is no file, it is not a checkpoint, or it does not list the topic.
 */
export function checkpointPosition(path: string, topic: string, bytes?: Buffer): number | null {
  try {
    const at = checkpointMeta(decodeSnapshot(bytes ?? readFileSync(path), path).header.meta)?.positions[topic]?.[0];
    return at === undefined ? null : Number(at);
  } catch {
    return null;
  }
}

/**
 * Waits until the checkpoint at `path` resumes `topic` past offset 0 (the first checkpoint, written before
 * anything is consumed, is at 0) and returns a copy of its bytes: a crash point to put back later.
 */
export async function checkpointPastStart(path: string, topic: string): Promise<Buffer> {
  const bytes = await eventually(() => {
    if (!existsSync(path)) return null;
    const read = readFileSync(path);
    return (checkpointPosition(path, topic, read) ?? 0) > 0 ? read : null;
  }, 120_000);
  return bytes!;
}

/** The attachments of the checkpoint in `bytes` (`EmbeddedCheckpointer.attach`), by name; {} when it has none. */
export function checkpointAttachments(bytes: Buffer): Readonly<Record<string, unknown>> {
  return checkpointMeta(decodeSnapshot(bytes, 'checkpoint').header.meta)?.attachments ?? {};
}
