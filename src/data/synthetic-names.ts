import type { Rng } from './random.ts';

/**
 * Readable, deterministic names for the synthetic catalogue. Readable names matter because CST renders item
 * titles and category names into the evidence the teacher and STAR read: "Quiet Harbor Jazz" in a prompt is
 * easier to debug than "i4711".
 */

// prettier-ignore
const CATEGORY_WORDS = [
  'Jazz', 'Hiking', 'Cooking', 'Sci-Fi', 'Gardening', 'Photography', 'Chess', 'Cycling', 'Poetry', 'Baking',
  'Robotics', 'Folk', 'Astronomy', 'Pottery', 'Surfing', 'Mystery', 'Yoga', 'Birding', 'Knitting', 'Opera',
  'Camping', 'History', 'Anime', 'Fishing', 'Woodwork', 'Techno', 'Travel', 'Comics', 'Skating', 'Wine',
  'Coffee', 'Drama', 'Running', 'Blues', 'Origami', 'Sailing', 'Painting', 'Climbing', 'Tea', 'Reggae',
  'Fantasy', 'Design', 'Tennis', 'Magic', 'Archery', 'Soul', 'Puzzles', 'Dance',
] as const;

// prettier-ignore
const ADJECTIVES = [
  'Quiet', 'Amber', 'Velvet', 'Silver', 'Wild', 'Golden', 'Hidden', 'Bright', 'Crimson', 'Gentle', 'Electric',
  'Frozen', 'Lucky', 'Midnight', 'Rustic', 'Swift', 'Urban', 'Ancient', 'Bold', 'Cosmic', 'Dusty', 'Emerald',
  'Faded', 'Glass', 'Hollow', 'Iron', 'Jade', 'Little', 'Misty', 'Noble', 'Ocean', 'Paper', 'Royal', 'Salty',
  'Tiny', 'Vivid', 'Winter', 'Young', 'Zesty', 'Brave',
] as const;

// prettier-ignore
const NOUNS = [
  'Harbor', 'Falcon', 'Lantern', 'Garden', 'River', 'Compass', 'Meadow', 'Engine', 'Orchard', 'Canyon',
  'Feather', 'Island', 'Journey', 'Kettle', 'Ladder', 'Mirror', 'Nest', 'Oracle', 'Pebble', 'Quartz', 'Rocket',
  'Saddle', 'Thunder', 'Umbrella', 'Valley', 'Whistle', 'Anchor', 'Bridge', 'Comet', 'Drum', 'Ember', 'Forest',
  'Glacier', 'Horizon', 'Ink', 'Jungle', 'Kite', 'Lighthouse', 'Moon', 'Voyage',
] as const;

/**
 * Name of category `index`. The first 48 are single words; past that the words repeat with a numeral
 * ("Jazz 2") so names stay unique for any count.
 */
export function categoryName(index: number): string {
  const word = CATEGORY_WORDS[index % CATEGORY_WORDS.length] as string;
  const round = Math.floor(index / CATEGORY_WORDS.length);
  return round === 0 ? word : `${word} ${round + 1}`;
}

/** Title and one-line description for an item, drawn from `rng` (fork one per catalogue, not per item). */
export function itemText(rng: Rng, categories: readonly string[]): { title: string; description: string } {
  const adjective = rng.pick(ADJECTIVES);
  const noun = rng.pick(NOUNS);
  const primary = categories[0] ?? 'General';
  const title = `${adjective} ${noun} ${primary}`;
  const fans = categories.join(', ');
  const description = `A ${adjective.toLowerCase()} ${noun.toLowerCase()} for fans of ${fans}.`;
  return { title, description };
}
