import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig, parseConfig } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/errors/index.ts';
import { silentLogger } from '../../../src/logging/logger.ts';
import { createLanguageModel } from '../../../src/teacher/llm/create.ts';
import { defaultModelPath } from '../../../src/teacher/llm/llama/model-path.ts';

describe('teacher.llm config', () => {
  it('defaults to the embedded backend on the fetched model', () => {
    const { llm } = parseConfig({}).teacher;
    assert.equal(llm.backend, 'llama');
    assert.equal(llm.modelPath, undefined);
    assert.equal(llm.responseFormat, 'auto');
    assert.equal(llm.contextSize, 8192);
    assert.equal(defaultModelPath({ STAR_MODELS: '/m' }), '/m/gemma-3-270m-q4_k_m.gguf');
    assert.equal(defaultModelPath({ XDG_CACHE_HOME: '/c' }), '/c/starstream/models/gemma-3-270m-q4_k_m.gguf');
  });

  it('requires a model name for the openai backend, naming the field', () => {
    assert.throws(
      () => parseConfig({ teacher: { llm: { backend: 'openai' } } }),
      (err) => err instanceof ConfigError && err.field === 'teacher.llm.model',
    );
    assert.throws(
      () => parseConfig({ teacher: { llm: { temprature: 1 } } }),
      (err) => err instanceof ConfigError,
    );
  });

  it('reads the API key from a mounted file, and the endpoint from env', () => {
    const dir = mkdtempSync(join(tmpdir(), 'llm-key-'));
    writeFileSync(join(dir, 'key'), 'sk-from-file\n');
    const config = loadConfig({
      env: {
        STARSTREAM_TEACHER__LLM__BACKEND: 'openai',
        STARSTREAM_TEACHER__LLM__BASE_URL: 'http://127.0.0.1:9/v1',
        STARSTREAM_TEACHER__LLM__MODEL: 'qwen',
        STARSTREAM_TEACHER__LLM__API_KEY_FILE: join(dir, 'key'),
        STARSTREAM_TEACHER__LLM__RETRY__RETRIES: '1',
      },
    });
    assert.equal(config.teacher.llm.apiKey, 'sk-from-file');
    assert.equal(config.teacher.llm.model, 'qwen');
    assert.equal(config.teacher.llm.retry.retries, 1);
  });

  it('creates the openai backend from config', async () => {
    const config = parseConfig({
      teacher: { llm: { backend: 'openai', model: 'm', baseUrl: 'http://127.0.0.1:9/v1' } },
    });
    const llm = await createLanguageModel(config.teacher.llm, silentLogger());
    assert.equal(llm.backend, 'openai');
    assert.equal(llm.model, 'm');
    await llm.close();
  });

  it('fails loudly when the embedded model file is missing', async () => {
    const config = parseConfig({ teacher: { llm: { modelPath: join(tmpdir(), 'no-such-model.gguf') } } });
    await assert.rejects(
      createLanguageModel(config.teacher.llm, silentLogger()),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'LLM_MODEL_MISSING');
        assert.match(err.message, /npm run teacher:model/);
        return true;
      },
    );
  });
});
