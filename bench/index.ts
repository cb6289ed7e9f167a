/**
 * `npm run bench [-- <suite>…]`: runs benchmarks, prints tables, saves results under bench/results/.
 * Suites: pipeline (default), store, kafka, star, item-writes, teacher. Options per suite are constants in each file; sizes can be
 * scaled down for a quick look with BENCH_SCALE=0.1. The teacher suite also reads flags (`--cases=N`, `--max-wall-ms=…`;
 * see bench/teacher.ts).
 */
import { DEFAULT_PIPELINE_BENCH, benchPipeline } from './pipeline.ts';

const suites = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const scale = Number(process.env.BENCH_SCALE ?? 1);
const scaled = (n: number): number => Math.max(1, Math.round(n * scale));

for (const suite of suites.length ? suites : ['pipeline']) {
  switch (suite) {
    case 'pipeline': {
      const d = DEFAULT_PIPELINE_BENCH;
      await benchPipeline({ ...d, events: scaled(d.events), rankedEvents: scaled(d.rankedEvents), latencySeconds: Math.max(3, scaled(d.latencySeconds)) });
      break;
    }
    case 'store': {
      const { runStoreBench } = await import('./store-suite.ts');
      await runStoreBench(scale);
      break;
    }
    case 'kafka': {
      const { runKafkaBench } = await import('./kafka-suite.ts');
      await runKafkaBench(scale);
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
      throw new Error(`unknown bench suite "${suite}" (pipeline, store, kafka, star, item-writes, teacher)`);
  }
}
