import { errorCode } from '../errors/index.ts';
import type { VectorStore } from '../store/port.ts';

/**
 * Times every call of a `VectorStore` (either adapter) and reports failures, without the adapters knowing:
 * the composition root wraps the store once, and every stage, the runner and the API see the wrapper. A call is
 * timed as the port sees it, retries included, so the histogram is what a stage waited for.
 */

export interface StoreInstruments {
  operation(operation: string, seconds: number): void;
  operationFailed(operation: string, code: string): void;
}

/** Written out method by method so that a new port method is a compile error here, not an untimed gap. */
export function instrumentStore(store: VectorStore, instruments: StoreInstruments): VectorStore {
  async function timed<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await call();
    } catch (err) {
      instruments.operationFailed(operation, errorCode(err));
      throw err;
    } finally {
      instruments.operation(operation, (performance.now() - started) / 1000);
    }
  }
  return {
    kind: store.kind,
    init: () => timed('init', () => store.init()),
    getUsers: (ids) => timed('getUsers', () => store.getUsers(ids)),
    getItems: (ids) => timed('getItems', () => store.getItems(ids)),
    putUsers: (users) => timed('putUsers', () => store.putUsers(users)),
    applyItemDeltas: (deltas) => timed('applyItemDeltas', () => store.applyItemDeltas(deltas)),
    putItemMetadata: (items) => timed('putItemMetadata', () => store.putItemMetadata(items)),
    searchItems: (query, k, exclude) => timed('searchItems', () => store.searchItems(query, k, exclude)),
    searchUsers: (query, k, exclude) => timed('searchUsers', () => store.searchUsers(query, k, exclude)),
    popularItems: (k, nowMs) => timed('popularItems', () => store.popularItems(k, nowMs)),
    counts: () => timed('counts', () => store.counts()),
    flush: () => timed('flush', () => store.flush()),
    close: () => store.close(),
    ...(store.writeBatch ? { writeBatch: (users, deltas) => timed('writeBatch', () => store.writeBatch!(users, deltas)) } : {}),
    ...(store.itemPositions ? { itemPositions: (ids) => timed('itemPositions', () => store.itemPositions!(ids)) } : {}),
    ...(store.applySourcedItemDeltas
      ? { applySourcedItemDeltas: (deltas, positions) => timed('applyItemDeltas', () => store.applySourcedItemDeltas!(deltas, positions)) }
      : {}),
    ...(store.readOutboxes ? { readOutboxes: (ids) => timed('readOutboxes', () => store.readOutboxes!(ids)) } : {}),
    // Not timed: a counter read and a synchronous notice, neither a store call.
    ...(store.roundTrips ? { roundTrips: () => store.roundTrips!() } : {}),
    ...(store.ownershipChanged ? { ownershipChanged: () => store.ownershipChanged!() } : {}),
    // Timed: waiting for the previous batch to end. The batch's reads are in-process and counted by the stages.
    ...(store.openBatch ? { openBatch: (hint) => timed('openBatch', () => store.openBatch!(hint)) } : {}),
  };
}
