/**
 * `npm run bench [-- <suite>…]`: runs benchmarks, prints tables, saves results under bench/results/.
 * Suites: pipeline (default), store, ann, kafka, embedded-log, star, item-writes, teacher. Options per suite are constants in each file; sizes can be
 * scaled down for a quick look with BENCH_SCALE=0.1. The teacher suite also reads flags (`--cases=N`, `--max-wall-ms=…`;
 * see bench/teacher.ts). The store and pipeline suites also measure Qdrant (QDRANT_URL, else a server they start from
 * ../shared/bin/qdrant and stop; BENCH_QDRANT=0 leaves Qdrant out), beside the embedded store in the same run.
 */
import { DEFAULT_PIPELINE_BENCH, DEFAULT_PIPELINE_STORES_BENCH, benchPipeline, benchPipelineStores } from './pipeline.ts';

const suites = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const scale = Number(process.env.BENCH_SCALE ?? 1);
const scaled = (n: number): number => Math.max(1, Math.round(n * scale));

for (const suite of suites.length ? suites : ['pipeline']) {
  switch (suite) {
    case 'pipeline': {
      const d = DEFAULT_PIPELINE_BENCH;
      await benchPipeline({ ...d, events: scaled(d.events), rankedEvents: scaled(d.rankedEvents), latencySeconds: Math.max(3, scaled(d.latencySeconds)) });
      // The same small workload on the embedded store and on Qdrant (BENCH_QDRANT=0 leaves it out).
      const s = DEFAULT_PIPELINE_STORES_BENCH;
      const { OPT_LEVEL_NOTE, dropCollections, withQdrant } = await import('./store-suite.ts');
      await withQdrant('pipeline bench', async (qdrant) => {
        const collectionPrefix = `bench_pipeline_${Date.now()}_`;
        try {
          const sizes = { ...s, events: scaled(s.events), rankedEvents: scaled(s.rankedEvents), users: scaled(s.users), items: scaled(s.items) };
          await benchPipelineStores(sizes, { ...qdrant, collectionPrefix, note: OPT_LEVEL_NOTE });
        } finally {
          await dropCollections(qdrant, collectionPrefix);
        }
      });
      break;
    }
    case 'store': {
      const { runStoreBench } = await import('./store-suite.ts');
      await runStoreBench(scale);
      break;
    }
    case 'ann': {
      // Recall@50 of the embedded store's vector search against exact search, beside its search latency.
      const { runAnnBench } = await import('./ann-suite.ts');
      await runAnnBench(scale);
      break;
    }
    case 'kafka': {
      const { runKafkaBench } = await import('./kafka-suite.ts');
      await runKafkaBench(scale);
      break;
    }
    case 'embedded-log': {
      const { runEmbeddedLogBench } = await import('./embedded-log.ts');
      await runEmbeddedLogBench(scale);
      break;
    }
    case 'star': {
      // Model: STAR_MODEL_DIR, else the committed tiny fixture (fast, but not the ml-100k model's figures).
      const { benchStar, starBenchTable } = await import('./star.ts');
      const modelDir = process.env.STAR_MODEL_DIR ?? 'test/fixtures/star-tiny';
      process.stdout.write(starBenchTable(await benchStar(modelDir)));
      break;
    }
    case 'item-writes': {
      const { DEFAULT_ITEM_WRITES_BENCH, benchItemWrites } = await import('./item-writes.ts');
      const d = DEFAULT_ITEM_WRITES_BENCH;
      await benchItemWrites({ ...d, events: scaled(d.events), rankedEvents: scaled(d.rankedEvents) });
      break;
    }
    case 'teacher': {
      // The real MARS teacher (embedded GGUF, 1 thread) against STAR and the baseline on the same sampled cases.
      const { DEFAULT_TEACHER_BENCH, benchTeacher, teacherBenchArgs } = await import('./teacher.ts');
      await benchTeacher(teacherBenchArgs(process.argv.slice(2), { ...DEFAULT_TEACHER_BENCH, cases: scaled(DEFAULT_TEACHER_BENCH.cases) }));
      break;
    }
    default:
      throw new Error(`unknown bench suite "${suite}" (pipeline, store, ann, kafka, embedded-log, star, item-writes, teacher)`);
  }
}
