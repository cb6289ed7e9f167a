import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadCstTemplates, parseSentence, render, type CstTemplates } from '../../src/cst/index.ts';
import { loadPromptSpec } from '../../src/star/prompt/spec.ts';
import { StarModelError } from '../../src/star/registry/errors.ts';
import { loadVerifiedModel } from '../../src/star/registry/registry.ts';
import { FIXTURE_MODEL } from '../star/helpers.ts';

/**
 * STAR models trained on the cst-1 templates, whose co-occurrence sentence said "9 of your last 5 items",
 * must not serve once the evidence stage renders cst-2: the registry refuses them by the manifest's label, and
 * by the sentences of their parity cases when the label was edited by hand.
 */

const templates = loadCstTemplates();
const spec = loadPromptSpec();

/** The cst-1 texts, as a record of what older models were trained on. */
const CST_1: Partial<Record<keyof CstTemplates['templates'], string>> = {
  cooccurrence: 'Co-occurs {count} times with {items} of your last {window} items, most with "{title}".',
  neighbours: '{count} of your {total} most similar users engaged with it recently.',
  category: '{share} of your recent items share its categories ({categories}).',
  cold: 'New to the catalogue: {count} interactions so far.',
};

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function copyFixture(edit: (dir: string) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'star-cst-'));
  dirs.push(dir);
  cpSync(FIXTURE_MODEL, dir, { recursive: true });
  edit(dir);
  return dir;
}

function editJson(path: string, edit: (x: Record<string, unknown>) => Record<string, unknown>): void {
  writeFileSync(path, JSON.stringify(edit(JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>)));
}

async function refusal(dir: string): Promise<StarModelError> {
  try {
    const { scorer } = await loadVerifiedModel(dir, { spec, cstTemplateVersion: templates.version, cstTemplates: templates, parityTolerance: 1e-4 });
    await scorer.close();
  } catch (err) {
    if (err instanceof StarModelError) return err;
    throw err;
  }
  assert.fail('the model was accepted');
}

describe('models and the CST template version', () => {
  it('the templates are past cst-1, and the prompt spec names the same version', () => {
    assert.notEqual(templates.version, 'cst-1');
    assert.equal(spec.cstTemplateVersion, templates.version);
  });

  it('the committed fixture was trained on the current templates: accepted, every parity sentence one of them', async () => {
    const { scorer, parity } = await loadVerifiedModel(FIXTURE_MODEL, { spec, cstTemplateVersion: templates.version, cstTemplates: templates, parityTolerance: 1e-4 });
    await scorer.close();
    assert.ok(parity.candidates > 0);
    const manifest = JSON.parse(readFileSync(join(FIXTURE_MODEL, 'star.json'), 'utf8')) as { cstTemplateVersion: string };
    assert.equal(manifest.cstTemplateVersion, templates.version);
  });

  it('refuses a model labelled cst-1 (MODEL_TEMPLATE_MISMATCH)', async () => {
    const dir = copyFixture((d) => editJson(join(d, 'star.json'), (m) => ({ ...m, cstTemplateVersion: 'cst-1' })));
    const err = await refusal(dir);
    assert.equal(err.code, 'MODEL_TEMPLATE_MISMATCH');
    assert.match(err.message, /CST templates cst-1/);
  });

  it('refuses a cst-1 model relabelled by hand: its parity cases hold cst-1 sentences (MODEL_TEMPLATE_MISMATCH)', async () => {
    let rewritten = 0;
    const dir = copyFixture((d) => {
      const path = join(d, 'parity.jsonl');
      const lines = readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { case: { candidates: { sentences: string[] }[] } });
      for (const line of lines) {
        for (const c of line.case.candidates) {
          c.sentences = c.sentences.map((s) => {
            const parsed = parseSentence(s, templates);
            const old = parsed && CST_1[parsed.key];
            if (!old) return s;
            rewritten++;
            return render(old, { ...parsed.values, share: '50%', categories: parsed.values.category ?? '' });
          });
        }
      }
      writeFileSync(path, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    });
    assert.ok(rewritten > 0);
    const err = await refusal(dir);
    assert.equal(err.code, 'MODEL_TEMPLATE_MISMATCH');
    assert.ok(err.message.includes(`no CST ${templates.version} template renders`), err.message);
  });
});
