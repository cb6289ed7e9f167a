import type { Trajectory } from '../../domain/teacher.ts';
import type { LogRecord, OutgoingRecord } from '../../eventlog/port.ts';
import { BadInputError, errorMessage } from '../../errors/index.ts';

/**
 * Trajectory records on the trajectories topic: UTF-8 JSON of the `Trajectory`, keyed by the case's user
 * (like the teacher-cases topic, so one user's records stay ordered), with the case id and the record schema
 * in headers so consumers (the outcome pairing, the dataset export) can route and de-duplicate without
 * decoding. JSON rather than Avro: the record nests free-form tool arguments and is read by Python too.
 */

export const TRAJECTORY_SCHEMA = 'starstream.trajectory.v1';
export const TRAJECTORY_HEADERS = { schema: 'starstream-schema', caseId: 'starstream-case-id', status: 'starstream-status' } as const;

export function trajectoryRecord(trajectory: Trajectory, userId: string, topic: string): OutgoingRecord {
  return {
    topic,
    key: userId,
    value: Buffer.from(JSON.stringify(trajectory), 'utf8'),
    headers: {
      [TRAJECTORY_HEADERS.schema]: TRAJECTORY_SCHEMA,
      [TRAJECTORY_HEADERS.caseId]: trajectory.caseId,
      [TRAJECTORY_HEADERS.status]: trajectory.status,
    },
  };
}

/** Throws `BadInputError` (`UNDECODABLE`) for bytes that are not a trajectory record. */
export function decodeTrajectory(record: Pick<LogRecord, 'value' | 'headers'>): Trajectory {
  const schema = record.headers[TRAJECTORY_HEADERS.schema]?.toString('utf8');
  if (schema !== undefined && schema !== TRAJECTORY_SCHEMA) throw new BadInputError('UNDECODABLE', `not a trajectory record: schema ${schema}`);
  let value: unknown;
  try {
    value = JSON.parse(record.value.toString('utf8'));
  } catch (err) {
    throw new BadInputError('UNDECODABLE', `trajectory record is not JSON: ${errorMessage(err)}`, { cause: err });
  }
  const t = value as Partial<Trajectory> | null;
  if (
    !t ||
    typeof t.caseId !== 'string' ||
    (t.status !== 'completed' && t.status !== 'failed') ||
    !Array.isArray(t.steps) ||
    !Array.isArray(t.turns) ||
    !Array.isArray(t.ranking) ||
    typeof t.serialized !== 'string'
  ) {
    throw new BadInputError('UNDECODABLE', 'trajectory record lacks caseId, status, steps, turns, ranking or serialized');
  }
  // What the data set's readers need of it (`labelledIssue`): accepted here, such a record was written to the
  // data set and then refused there (the writer's recovery, distill and the Python reader).
  if (t.caseId === '' || !t.ranking.every((id) => typeof id === 'string') || typeof t.backend !== 'string' || typeof t.model !== 'string') {
    throw new BadInputError('UNDECODABLE', 'trajectory record has an empty caseId, a ranking that is not a list of ids, or no backend or model');
  }
  return t as Trajectory;
}
