import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Components take a child logger with `component` set; fixed keys are `topic`,
 * `partition`, `offset`, `userId`, `code`. Untrusted values (ids, titles) go under those keys, never as keys.
 */
export function createLogger(level: string, destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino(
    {
      level,
      base: { service: 'starstream' },
      redact: { paths: ['*.password', '*.apiKey', '*.apiToken', '*.sasl', 'config.ops.apiToken'], censor: '[redacted]' },
    },
    destination as DestinationStream,
  );
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
