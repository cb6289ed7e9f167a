import { loadConfig } from './src/config/load.ts';
import { casesExport } from './src/cli/cases.ts';
const [out, overrides, trainEvery] = process.argv.slice(2);
const r = await casesExport(loadConfig({ overrides: JSON.parse(overrides!) }), { dataset: 'ml-100k', out: out!, trainEvery: Number(trainEvery), progressEveryMs: 30000 });
console.log(JSON.stringify(r));
