import { join } from 'node:path';
import type { Interaction, Item } from '../domain/events.ts';
import { FatalError } from '../errors/index.ts';
import { malformedLine, parseIntField, readDatasetFile, splitLines, type LoadedDataset } from './files.ts';

export type { LoadedDataset } from './files.ts';

/**
 * Loader for the MovieLens 100K file format (GroupLens `ml-100k`; the copy the project uses lives in
 * `shared/datasets/ml-100k`, whose SOURCE.md records its provenance and license: research use only, never
 * commit it).
 *
 * Files read:
 * - `u.genre`: `name|index`, the 19 genre names (including `unknown`) in flag order.
 * - `u.item`: Latin-1, `id|title|release date|video release date|IMDb URL|19 genre flags`.
 * - `u.data`: `user \t item \t rating \t unix seconds`, no header, in the original unsorted order.
 */

/**
 * Loads a MovieLens-format directory (whole files in memory: 100k ratings are about 20 MB of objects).
 *
 * - Interactions: type `rating`, `value` the 1–5 stars, `timestampMs` = seconds × 1000, `eventId`
 *   `ml-<line number in u.data>` (1-based, so ids are stable across runs and releases of this code),
 *   `context` empty. Sorted by timestamp with a stable sort: ratings with the same second keep their order
 *   in `u.data`, so the replay order is fully determined by the file.
 * - Items: `itemId` and titles as in the file (decoded from Latin-1, so `Á köldum klaka` keeps its accents),
 *   categories the names of the set genre flags (`unknown` included, as the data set has it), attributes
 *   `releaseDate` and `imdbUrl` when present. `timestampMs` is the item's first rating: the earliest moment
 *   the stream could know about it, so publishing items at that time never leaks the future.
 *
 * Throws `FatalError` `DATASET_MISSING` when a file is absent and `DATASET_MALFORMED` (with `file:line`) on a
 * line that does not parse or a rating of an item missing from `u.item`.
 */
export async function loadMovieLens(dir: string): Promise<LoadedDataset> {
  const [genreText, itemText, dataText] = await Promise.all([
    readDatasetFile(dir, 'u.genre', 'utf8'),
    readDatasetFile(dir, 'u.item', 'latin1'),
    readDatasetFile(dir, 'u.data', 'utf8'),
  ]);
  const genres = parseGenres(genreText, join(dir, 'u.genre'));
  const interactions = parseRatings(dataText, join(dir, 'u.data'));
  const firstSeen = firstTimestamps(interactions);
  const fallbackMs = interactions[0]?.timestampMs ?? 0;
  const items = parseItems(itemText, genres, join(dir, 'u.item'), (id) => firstSeen.get(id) ?? fallbackMs);
  const known = new Set(items.map((item) => item.itemId));
  for (const interaction of interactions) {
    if (!known.has(interaction.itemId)) {
      const line = Number(interaction.eventId.slice('ml-'.length));
      throw malformedLine(join(dir, 'u.data'), line, `item ${interaction.itemId} is not in u.item`);
    }
  }
  return { items, interactions };
}

/** Genre names by flag position. */
export function parseGenres(text: string, file: string): string[] {
  const genres: string[] = [];
  splitLines(text).forEach((line, k) => {
    if (line.trim() === '') return;
    const [name, indexText] = line.split('|');
    const index = parseIntField(indexText ?? '');
    if (!name || !Number.isInteger(index) || index < 0)
      throw malformedLine(file, k + 1, 'expected name|index');
    genres[index] = name;
  });
  for (let g = 0; g < genres.length; g++) {
    if (genres[g] === undefined)
      throw new FatalError('DATASET_MALFORMED', `${file}: no genre with index ${g}`);
  }
  return genres;
}

/** `u.item` rows to catalogue entries. */
export function parseItems(
  text: string,
  genres: readonly string[],
  file: string,
  firstSeenMs: (itemId: string) => number,
): Item[] {
  const items: Item[] = [];
  splitLines(text).forEach((line, k) => {
    if (line === '') return;
    const fields = line.split('|');
    if (fields.length !== 5 + genres.length) {
      throw malformedLine(file, k + 1, `expected ${5 + genres.length} fields, got ${fields.length}`);
    }
    const [itemId = '', title = '', releaseDate = '', , imdbUrl = ''] = fields;
    if (itemId === '') throw malformedLine(file, k + 1, 'empty item id');
    const categories: string[] = [];
    for (let g = 0; g < genres.length; g++) {
      const flag = fields[5 + g];
      if (flag !== '0' && flag !== '1') throw malformedLine(file, k + 1, `genre flag ${g} is ${flag}`);
      if (flag === '1') categories.push(genres[g] as string);
    }
    const attributes: Record<string, string> = {};
    if (releaseDate !== '') attributes.releaseDate = releaseDate;
    if (imdbUrl !== '') attributes.imdbUrl = imdbUrl;
    items.push({
      itemId,
      title,
      categories,
      description: null,
      attributes,
      timestampMs: firstSeenMs(itemId),
    });
  });
  return items;
}

/** `u.data` rows to interactions, sorted by time (stable). */
export function parseRatings(text: string, file: string): Interaction[] {
  const interactions: Interaction[] = [];
  splitLines(text).forEach((line, k) => {
    if (line === '') return;
    const fields = line.split('\t');
    const [userId = '', itemId = '', ratingText = '', secondsText = ''] = fields;
    const rating = parseIntField(ratingText);
    const seconds = parseIntField(secondsText);
    if (
      fields.length !== 4 ||
      userId === '' ||
      itemId === '' ||
      Number.isNaN(rating) ||
      Number.isNaN(seconds)
    ) {
      throw malformedLine(file, k + 1, 'expected user \\t item \\t rating \\t seconds');
    }
    interactions.push({
      eventId: `ml-${k + 1}`,
      userId,
      itemId,
      type: 'rating',
      value: rating,
      timestampMs: seconds * 1000,
      context: {},
    });
  });
  // Array.prototype.sort is stable (ES2019), which is what keeps same-second ratings in file order.
  return interactions.sort((a, b) => a.timestampMs - b.timestampMs);
}

function firstTimestamps(sorted: readonly Interaction[]): Map<string, number> {
  const first = new Map<string, number>();
  for (const interaction of sorted) {
    if (!first.has(interaction.itemId)) first.set(interaction.itemId, interaction.timestampMs);
  }
  return first;
}
