#!/usr/bin/env node
// `npm run kafka`: a local single-node Kafka (KRaft) on 127.0.0.1:9092 in the foreground; Ctrl-C stops it.
//   npm run kafka -- --port 9092 --data-dir .data/kafka   (a data dir keeps topics and offsets across runs)
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, startLocalBroker } from './broker.mjs';
import { kafkaVersion } from './libs.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9092' },
    'data-dir': { type: 'string' },
  },
});
const port = Number(values.port);
const controllerPort = port + 1 < 65_536 ? port + 1 : await freePort();

let broker;
try {
  broker = await startLocalBroker({
    port,
    controllerPort,
    dataDir: values['data-dir'] ? resolve(values['data-dir']) : undefined,
    log: (line) => console.error(line),
  });
} catch (err) {
  console.error(`could not start Kafka: ${err.message}`);
  process.exit(1);
}
console.log(`Kafka ${kafkaVersion()} ready: bootstrap ${broker.brokers}`);
console.log(
  `  STARSTREAM_EVENT_LOG__KIND=kafka STARSTREAM_EVENT_LOG__KAFKA__BROKERS='["${broker.brokers}"]'`,
);
console.log('Ctrl-C stops it.');

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  console.error('stopping Kafka…');
  await broker.stop();
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
