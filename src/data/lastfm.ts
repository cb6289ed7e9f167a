import { join } from 'node:path';
import type { Interaction, Item } from '../domain/events.ts';
import { malformedLine, parseIntField, readDatasetFile, splitLines, type LoadedDataset } from './files.ts';
import { createRng, type Seed } from './random.ts';

/**
 * Loader for the HetRec 2011 Last.fm 2k data set (`shared/datasets/lastfm-hetrec2011-2k`; see its SOURCE.md:
 * non-commercial use only).
 *
 * ⚠ THE ORDER AND THE TIMESTAMPS OF THIS DATA SET ARE INVENTED. ⚠
 * The copy has no timestamps at all (the tag-assignment files that carry them are missing), only each user's
 * top-50 artists with play counts. To replay it as a stream this loader makes up a deterministic pseudo-time:
 * - each user's artists are ordered by descending play count (ties: file order);
 * - users are interleaved round-robin: round r emits every user's r-th artist, the users of each round in a
 *   seeded random order;
 * - event k gets `startMs + k × stepMs`.
 * So "next item" in this stream means "the user's next most-played artist", and every user is active from
 * the first round. Sequence-aware results on it (session models, prequential hit rates, recency evidence)
 * measure this construction, not listening behaviour: use it for set-based evaluation and as a second,
 * differently shaped catalogue, and never report its temporal numbers as if they were observed.
 *
 * Interactions: type `view`, `value` = play count (the `weight` column), `eventId` `lfm-<line number in
 * user_artists.dat>` (1-based, the header is line 1), `context` empty. Items: artists, `title` = name,
 * `categories` empty (the tag assignments are missing), attribute `url` (the dead Last.fm page, for
 * reference), `timestampMs` the artist's first pseudo-time interaction (or `startMs` if it has none).
 */
export interface LastFmOptions {
  /** Seed of the per-round user order. @default 'lastfm-hetrec2011-2k' */
  readonly seed?: Seed;
  /** Pseudo-time of the first event. @default Date.UTC(2011, 0, 1) */
  readonly startMs?: number;
  /** Pseudo-time between consecutive events. @default 60000 (one minute; the whole set spans about 64 days) */
  readonly stepMs?: number;
}

/** One row of `user_artists.dat`. */
interface Play {
  readonly artistId: string;
  readonly weight: number;
  readonly line: number;
}

/** Loads the data set and synthesises its replay order as described above. */
export async function loadLastFm(dir: string, options: LastFmOptions = {}): Promise<LoadedDataset> {
  const seed = options.seed ?? 'lastfm-hetrec2011-2k';
  const startMs = options.startMs ?? Date.UTC(2011, 0, 1);
  const stepMs = options.stepMs ?? 60_000;
  const [artistText, playText] = await Promise.all([
    readDatasetFile(dir, 'artists.dat', 'utf8'),
    readDatasetFile(dir, 'user_artists.dat', 'utf8'),
  ]);
  const artists = parseArtists(artistText, join(dir, 'artists.dat'));
  const playsFile = join(dir, 'user_artists.dat');
  const plays = parsePlays(playText, playsFile);
  for (const list of plays.values()) {
    for (const play of list) {
      if (!artists.has(play.artistId))
        throw malformedLine(playsFile, play.line, `unknown artist ${play.artistId}`);
    }
  }
  const interactions = pseudoTimeOrder(plays, seed, startMs, stepMs);
  const firstSeen = new Map<string, number>();
  for (const i of interactions) if (!firstSeen.has(i.itemId)) firstSeen.set(i.itemId, i.timestampMs);
  const items: Item[] = [];
  for (const [itemId, { name, url }] of artists) {
    items.push({
      itemId,
      title: name,
      categories: [],
      description: null,
      attributes: url === '' ? {} : { url },
      timestampMs: firstSeen.get(itemId) ?? startMs,
    });
  }
  return { items, interactions };
}

/** `artists.dat` (header, tab separated) as id → name and URL, in file order. */
export function parseArtists(text: string, file: string): Map<string, { name: string; url: string }> {
  const artists = new Map<string, { name: string; url: string }>();
  splitLines(text).forEach((line, k) => {
    if (k === 0 || line === '') return;
    const [id = '', name = '', url = ''] = line.split('\t');
    if (Number.isNaN(parseIntField(id)) || name === '')
      throw malformedLine(file, k + 1, 'expected id \\t name');
    if (artists.has(id)) throw malformedLine(file, k + 1, `duplicate artist ${id}`);
    artists.set(id, { name, url });
  });
  return artists;
}

/** `user_artists.dat` (header, CRLF) grouped by user, users in order of first appearance. */
export function parsePlays(text: string, file: string): Map<string, Play[]> {
  const byUser = new Map<string, Play[]>();
  splitLines(text).forEach((line, k) => {
    if (k === 0 || line === '') return;
    const fields = line.split('\t');
    const [userId = '', artistId = '', weightText = ''] = fields;
    const weight = parseIntField(weightText);
    if (fields.length !== 3 || userId === '' || artistId === '' || Number.isNaN(weight)) {
      throw malformedLine(file, k + 1, 'expected user \\t artist \\t weight');
    }
    let list = byUser.get(userId);
    if (!list) byUser.set(userId, (list = []));
    list.push({ artistId, weight, line: k + 1 });
  });
  return byUser;
}

/** The round-robin pseudo-time described in the module doc. */
export function pseudoTimeOrder(
  plays: ReadonlyMap<string, readonly Play[]>,
  seed: Seed,
  startMs: number,
  stepMs: number,
): Interaction[] {
  const rng = createRng(seed);
  const users = [...plays.keys()];
  const queues = new Map<string, Play[]>();
  let rounds = 0;
  for (const [userId, list] of plays) {
    queues.set(
      userId,
      [...list].sort((a, b) => b.weight - a.weight || a.line - b.line),
    );
    rounds = Math.max(rounds, list.length);
  }
  const interactions: Interaction[] = [];
  for (let round = 0; round < rounds; round++) {
    const active = rng.shuffle(users.filter((u) => (queues.get(u)?.length ?? 0) > round));
    for (const userId of active) {
      const play = queues.get(userId)?.[round] as Play;
      interactions.push({
        eventId: `lfm-${play.line}`,
        userId,
        itemId: play.artistId,
        type: 'view',
        value: play.weight,
        timestampMs: startMs + interactions.length * stepMs,
        context: {},
      });
    }
  }
  return interactions;
}
