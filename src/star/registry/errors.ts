import { FatalError } from '../../errors/index.ts';

/**
 * A STAR model that cannot serve: its directory is incomplete or invalid, it was trained on another prompt or
 * CST template version, it fails to load, or it disagrees with its own parity cases. At startup this stops
 * the process (a `FatalError`); during a hot reload the registry refuses the model, logs and counts the code,
 * and the previous model keeps serving.
 */
export const STAR_MODEL_CODES = [
  'MODEL_INVALID',
  'MODEL_TEMPLATE_MISMATCH',
  'MODEL_LOAD_FAILED',
  'MODEL_PARITY_MISMATCH',
  'MODEL_REGISTRY_INVALID',
] as const;
export type StarModelCode = (typeof STAR_MODEL_CODES)[number];

export class StarModelError extends FatalError {
  declare readonly code: StarModelCode;

  constructor(code: StarModelCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
