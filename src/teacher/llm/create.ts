import type { Config } from '../../config/schema.ts';
import { ConfigError } from '../../errors/index.ts';
import type { Logger } from '../../logging/logger.ts';
import { defaultModelPath } from './llama/model-path.ts';
import type { LanguageModel } from './port.ts';

export type TeacherLlmConfig = Config['teacher']['llm'];

/**
 * The language model `teacher.llm` names, for the teacher worker's composition. Each backend is imported only
 * here and only when chosen, so a pipeline process that never runs the teacher never loads node-llama-cpp's
 * native addon (nor the HTTP client code). The llama backend loads its model before this resolves (seconds).
 */
export async function createLanguageModel(config: TeacherLlmConfig, logger: Logger): Promise<LanguageModel> {
  const log = logger.child({ component: 'teacher-llm', backend: config.backend });
  switch (config.backend) {
    case 'llama': {
      const { openLlamaModel } = await import('./llama/backend.ts');
      return openLlamaModel({
        modelPath: config.modelPath ?? defaultModelPath(),
        contextSize: config.contextSize,
        sequences: config.sequences,
        threads: config.threads,
        timeoutMs: config.timeoutMs,
        temperature: config.temperature,
        logger: log,
      });
    }
    case 'openai': {
      if (!config.model) throw new ConfigError('teacher.llm.model', 'required when backend = openai');
      const { createOpenAiLanguageModel } = await import('./openai/backend.ts');
      return createOpenAiLanguageModel({
        baseUrl: config.baseUrl,
        model: config.model,
        apiKey: config.apiKey,
        timeoutMs: config.timeoutMs,
        retry: config.retry,
        responseFormat: config.responseFormat,
        strictSchema: config.strictSchema,
        temperature: config.temperature,
        logger: log,
      });
    }
  }
}
