import { pathToFileURL } from 'node:url';
import { casesExport, type CasesExportReport } from '../../src/cli/cases.ts';
import { loadConfig } from '../../src/config/load.ts';
import { generateCatalogue, generateStream } from '../../src/data/synthetic.ts';

/**
 * A small synthetic case file for the committed tiny STAR model (`test/fixtures/star-tiny`) and for tests:
 * a seeded synthetic world replayed through `casesExport`, so no public data set is copied into the
 * repository. `node --import tsx test/star/fixture-cases.ts <out.jsonl>` (see `train/scripts/make-fixture.sh`).
 */
export async function writeSyntheticCases(out: string, events = 12_000): Promise<CasesExportReport> {
  const world = { users: 200, items: 300, events, seed: 11 };
  const config = loadConfig();
  return casesExport(config, {
    dataset: { items: generateCatalogue(world), interactions: [...generateStream(world)] },
    out,
    trainEvery: 2,
    testEvery: 4,
    progress: null,
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const out = process.argv[2] ?? '.data/synthetic-cases.jsonl';
  const report = await writeSyntheticCases(out);
  process.stdout.write(`${JSON.stringify({ out, cases: report.cases, skipped: report.skipped, seconds: report.seconds })}\n`);
}
