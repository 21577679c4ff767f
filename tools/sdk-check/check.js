'use strict';
// Drives every Jobs operation through a built copy of the official
// TypeScript SDK (@intuned/client) against a running intuned-emulator, so the
// SDK's own response validation judges the emulator's answers.  One line per
// operation: "ok   NAME ..." or "FAIL NAME <the SDK's error>".  Started by
// run.sh, which also starts the emulator; see run.sh for what it needs.
//
//   node check.js --sdk DIR --api newest|v0.3.12 --url API_BASE [--key K] [--workspace W]
//
// Exit status: 0 all ok, 1 some operation failed, 2 bad usage or setup.

const fs = require('fs');
const path = require('path');

function usage(msg) {
  process.stderr.write('check.js: ' + msg + '\n' +
    'usage: node check.js --sdk DIR --api newest|v0.3.12 --url API_BASE [--key K] [--workspace W]\n');
  process.exit(2);
}

const opt = { key: 'test-key', workspace: 'ws-local', project: 'sdkchk' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  const v = process.argv[i + 1];
  if (!['sdk', 'api', 'url', 'key', 'workspace', 'project'].includes(k) || v === undefined) usage('bad argument ' + process.argv[i]);
  opt[k] = v;
}
if (!opt.sdk || !opt.url || !opt.api) usage('--sdk, --api and --url are required');
if (opt.api !== 'newest' && opt.api !== 'v0.3.12') usage('--api must be newest or v0.3.12');
const NEWEST = opt.api === 'newest';

// The SDK is compiled in place (its tsconfig's outDir is "."), so the
// CommonJS entry points sit at the top of the checkout.
for (const f of ['index.js', 'lib/http.js', 'models/errors/index.js', 'package.json']) {
  if (!fs.existsSync(path.join(opt.sdk, f))) {
    usage(`${path.join(opt.sdk, f)} is missing: --sdk must be a built checkout of @intuned/client`);
  }
}
const pkg = JSON.parse(fs.readFileSync(path.join(opt.sdk, 'package.json'), 'utf8'));
const wantVersion = NEWEST ? '0.5.2' : '0.3.12';
if (pkg.name !== '@intuned/client' || pkg.version !== wantVersion) {
  usage(`${opt.sdk} holds ${pkg.name}@${pkg.version}; --api ${opt.api} needs @intuned/client@${wantVersion}`);
}
const sdk = require(path.resolve(opt.sdk, 'index.js'));
const { HTTPClient } = require(path.resolve(opt.sdk, 'lib/http.js'));

// The last response's status and raw body, read beside the SDK's own reading.
let last = null;
const httpClient = new HTTPClient({
  fetcher: async (req) => {
    const res = await fetch(req);
    last = { status: res.status, body: await res.clone().text() };
    return res;
  },
});

function client(key) {
  return new sdk.IntunedClient({
    serverURL: opt.url, apiKey: key, workspaceId: opt.workspace, httpClient, timeoutMs: 20000,
  });
}
const good = client(opt.key);
const bad = client('sdkchk-wrong-key');

const oneLine = (s) => String(s).replace(/\s*\n\s*/g, ' | ').slice(0, 1500);

// Keys of the raw body that the SDK's result lacks (it drops keys its schema
// does not know).  The SDK renames snake_case to camelCase, so names are
// compared without case and underscores.  Free-form maps are walked too, but
// the SDK keeps those whole, so they never show up.
function dropped(raw, parsed, where, out) {
  if (Array.isArray(raw) && Array.isArray(parsed)) {
    raw.forEach((v, i) => dropped(v, parsed[i], `${where}[${i}]`, out));
  } else if (raw && typeof raw === 'object' && parsed && typeof parsed === 'object') {
    const norm = (k) => k.toLowerCase().replace(/_/g, '');
    const byNorm = new Map(Object.keys(parsed).map((k) => [norm(k), k]));
    for (const k of Object.keys(raw)) {
      const pk = byNorm.get(norm(k));
      const at = where ? `${where}.${k}` : k;
      if (pk === undefined) out.add(at.replace(/\[\d+\]/g, '[]'));
      else dropped(raw[k], parsed[pk], at, out);
    }
  }
  return out;
}

let failures = 0;
let oks = 0;
const pad = (s) => s.padEnd(34);
function ok(name, text) { oks++; console.log(`ok   ${pad(name)} ${text}`); }
function fail(name, text) { failures++; console.log(`FAIL ${pad(name)} ${oneLine(text)}`); }

// A zod error's issues, one short clause each ("[path] message"); a union
// that nothing fitted says so rather than listing every member's complaint.
function zodIssues(cause) {
  if (!cause || !Array.isArray(cause.issues)) return null;
  return cause.issues.map((i) => {
    const at = `[${i.path.join('.')}]`;
    if (i.code === 'invalid_union' && Array.isArray(i.unionErrors)) {
      const first = i.unionErrors.map((u) => u.issues && u.issues[0]).filter(Boolean)
        .map((u) => `${u.path.slice(i.path.length).join('.') || 'value'}: ${u.message}`);
      return `${at} fits none of the ${i.unionErrors.length} union members (${[...new Set(first)].join('; ')})`;
    }
    return `${at} ${i.message}`;
  }).join('; ');
}

function describeError(e) {
  const issues = e && (e.name === 'ResponseValidationError' || e.name === 'SDKValidationError') && zodIssues(e.cause);
  let text = `${e && e.name}: ${issues ? `${e.message}: ${issues}` : e && typeof e.pretty === 'function' ? e.pretty() : e && e.message}`;
  if (last && !/status \d/i.test(text)) text += ` [HTTP ${last.status} body ${last.body.slice(0, 400)}]`;
  return text;
}

// A call that must succeed; `show` picks what the ok line prints.
async function call(name, fn, show) {
  last = null;
  try {
    const v = await fn();
    let raw;
    try { raw = last && last.body ? JSON.parse(last.body) : undefined; } catch (_) { raw = undefined; }
    const extra = raw === undefined || v === undefined ? [] : [...dropped(raw, v, '', new Set())];
    ok(name, oneLine((show ? show(v) : JSON.stringify(v)) +
      (extra.length ? `  (the SDK dropped keys it does not know: ${extra.join(', ')})` : '')));
    return v;
  } catch (e) {
    fail(name, describeError(e));
    return undefined;
  }
}

// The SDK's error classes that mean "not one of this operation's typed errors".
const GENERIC = ['SDKError', 'IntunedClientError', 'ResponseValidationError', 'SDKValidationError',
  'HTTPClientError', 'UnexpectedClientError', 'InvalidRequestError', 'RequestAbortedError',
  'RequestTimeoutError', 'ConnectionError'];

// A call that must fail with HTTP `status`.  typed: the SDK must raise the
// operation's typed error (newest: its `code` is `code`; v0.3.12: class
// `code`); false: the SDK's generic error for that status is what is right.
async function expectError(name, status, fn, typed, code) {
  last = null;
  try {
    const v = await fn();
    fail(name, `expected HTTP ${status}, the SDK returned ${JSON.stringify(v)}`);
  } catch (e) {
    const got = last ? last.status : undefined;
    if (got !== status) { fail(name, `expected HTTP ${status}, got ${got}: ${describeError(e)}`); return; }
    if (typed) {
      const isTyped = !GENERIC.includes(e.name);
      if (!isTyped) { fail(name, describeError(e)); return; }
      if (NEWEST && e.code !== code) { fail(name, `${e.name} with code ${e.code}, expected ${code}`); return; }
      if (!NEWEST && e.name !== code) { fail(name, `${e.name}, expected ${code}`); return; }
      ok(name, `${e.name}` + (NEWEST ? ` code=${e.code} category=${e.category} retirable=${e.retirable}` +
        ` correlationId=${e.correlationId}` : '') + ` message=${JSON.stringify(e.message)}`);
    } else {
      if (e.name !== 'SDKError') { fail(name, `expected the generic SDKError, got ${describeError(e)}`); return; }
      ok(name, `SDKError (untyped, as the SDK declares) ${oneLine(e.message).slice(0, 200)}`);
    }
  }
}

// Something the SDK must refuse, whatever the status (e.g. trigger on a paused job).
async function expectRefused(name, fn) {
  last = null;
  try {
    const v = await fn();
    fail(name, `expected a refusal, the SDK returned ${JSON.stringify(v)}`);
  } catch (e) {
    // 401 and 404 would mean the call never reached the state check
    if (['ResponseValidationError', 'SDKValidationError'].includes(e.name) || !last ||
        last.status < 400 || last.status >= 500 || last.status === 401 || last.status === 404) {
      fail(name, describeError(e));
      return;
    }
    ok(name, `refused: HTTP ${last.status} ${e.name}: ${oneLine(e.message).slice(0, 200)}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function newest() {
  const P = opt.project;
  const jobs = good.project.jobs;
  const J1 = 'sdkchk-defaults';
  const J2 = 'sdkchk-rich';
  const receiver = opt.url.replace(/\/api\/v1\/workspace\/?$/, '') + '/_receiver/sdkchk';

  // The SDK fills requestTimeout (600) on the configuration and on each payload.
  await call('create (SDK defaults)', () => jobs.create(P, {
    id: J1, payload: [{ apiName: 'sdkchk/a', parameters: {} }], configuration: {},
  }));
  await call('create (every field)', () => jobs.create(P, {
    id: J2,
    payload: [{ apiName: 'sdkchk/b', parameters: { q: 'x' }, retry: {} }],
    configuration: { retry: {}, maxConcurrentRequests: 2 },
    schedule: {
      jitter: '1m',
      intervals: [{ every: '1h' }],
      calendars: [{ minute: { start: 0, end: 30, step: 15 }, hour: 3, dayOfWeek: { start: 'MONDAY', end: 'FRIDAY' }, comment: 'weekdays' }],
    },
    sink: { type: 'webhook', url: receiver, headers: { 'x-sdkchk': '1' }, apisToSend: ['sdkchk/b'] },
    proxy: 'http://proxy.invalid:8080',
    authSession: { id: 'sdkchk-session' },
  }));
  const J3 = 'sdkchk-s3-nulls';
  await call('create (S3 sink, nulls)', () => jobs.create(P, {
    id: J3, payload: [{ apiName: 'sdkchk/c', parameters: {} }], configuration: {}, schedule: null, proxy: null, authSession: null,
    sink: { type: 's3', bucket: 'b', accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'example-secret', region: 'us-east-1',
      prefix: 'p/', skipOnFail: true, apisToSend: ['sdkchk/c'], endpoint: 'http://127.0.0.1:9', forcePathStyle: true },
  }));
  await call('get (SDK defaults)', () => jobs.one(P, J1));
  await call('get (every field)', () => jobs.one(P, J2));
  await call('get (S3 sink, nulls)', () => jobs.one(P, J3));
  await call('list', () => jobs.all(P), (v) => `${v.length} jobs: ${JSON.stringify(v)}`);
  await call('update (clears with nulls)', () => jobs.update(P, J2, {
    payload: [{ apiName: 'sdkchk/b', parameters: {} }], configuration: {}, schedule: null, sink: null, proxy: null, authSession: null,
  }));
  await call('get after clearing', () => jobs.one(P, J2));
  await call('delete (S3 sink, nulls)', () => jobs.delete(P, J3), () => 'deleted');
  // three payloads one at a time: the run lasts long enough to terminate
  await call('update', () => jobs.update(P, J1, {
    payload: [1, 2, 3].map((n) => ({ apiName: `sdkchk/p${n}`, parameters: { n } })),
    configuration: { maxConcurrentRequests: 1 },
  }));
  await call('get after update', () => jobs.one(P, J1));
  await call('pause', () => jobs.pause(P, J1));
  await call('get while paused', () => jobs.one(P, J1));
  await call('list while paused', () => jobs.all(P));
  await expectRefused('trigger while paused', () => jobs.trigger(P, J1));
  await call('resume', () => jobs.resume(P, J1));
  const trig = await call('trigger', () => jobs.trigger(P, J1));
  await call('trigger (second run)', () => jobs.trigger(P, J1));
  await call('list runs', () => jobs.runs.all({ projectName: P, jobId: J1 }),
    (v) => `totalCount=${v.totalCount} ${JSON.stringify(v)}`);
  await call('list runs (page 0, size 1)', () => jobs.runs.all({ projectName: P, jobId: J1, pageNumber: '0', pageSize: '1', sortBy: 'start_time,desc' }),
    (v) => `totalCount=${v.totalCount} jobRuns=${v.jobRuns.length} ${JSON.stringify(v)}`);
  await call('list runs (page 1, size 1)', () => jobs.runs.all({ projectName: P, jobId: J1, pageNumber: '1', pageSize: '1' }),
    (v) => `totalCount=${v.totalCount} jobRuns=${v.jobRuns.length}`);
  const runId = trig && trig.jobRunId;
  if (runId) {
    await call('get one run', () => jobs.runs.one(P, J1, runId));
    await call('terminate', () => jobs.runs.terminate(P, J1, runId));
    await call('get one run (terminated)', () => jobs.runs.one(P, J1, runId),
      (v) => `status=${v.jobRun.status} ${JSON.stringify(v)}`);
  } else {
    fail('get one run', 'no run id from trigger');
    fail('terminate', 'no run id from trigger');
  }
  await call('list runs (after terminate)', () => jobs.runs.all({ projectName: P, jobId: J1 }),
    (v) => `statuses=${v.jobRuns.map((r) => r.status).join(',')}`);

  // typed errors
  const X = 'sdkchk-no-such-job';
  await expectError('400 create (bad id)', 400, () => jobs.create(P, { id: 'bad id!', payload: [{ apiName: 'a', parameters: {} }], configuration: {} }), true, 'bad-request');
  await expectError('400 update (bad config)', 400, () => jobs.update(P, J1, { payload: [{ apiName: 'a', parameters: {} }], configuration: { maxConcurrentRequests: 0 } }), true, 'bad-request');
  await expectError('400 list runs (pageSize 0)', 400, () => jobs.runs.all({ projectName: P, jobId: J1, pageSize: '0' }), true, 'bad-request');
  // valid bodies (the emulator refuses an empty payload list), so only the key or the id is wrong
  const one = [{ apiName: 'sdkchk/a', parameters: {} }];
  const ops = (c, job, run) => [
    ['list', () => c.project.jobs.all(P)],
    ['create', () => c.project.jobs.create(P, { id: 'sdkchk-401', payload: one, configuration: {} })],
    ['get', () => c.project.jobs.one(P, job)],
    ['update', () => c.project.jobs.update(P, job, { payload: one, configuration: {} })],
    ['pause', () => c.project.jobs.pause(P, job)],
    ['resume', () => c.project.jobs.resume(P, job)],
    ['trigger', () => c.project.jobs.trigger(P, job)],
    ['list runs', () => c.project.jobs.runs.all({ projectName: P, jobId: job })],
    ['get one run', () => c.project.jobs.runs.one(P, job, run)],
    ['terminate', () => c.project.jobs.runs.terminate(P, job, run)],
    ['delete', () => c.project.jobs.delete(P, job)],
  ];
  for (const [n, f] of ops(bad, J1, runId || 'x')) await expectError(`401 ${n}`, 401, f, true, 'unauthorized');
  for (const [n, f] of ops(good, X, 'sdkchk-no-such-run')) {
    if (n === 'list' || n === 'create') continue;
    await expectError(`404 ${n} (no such job)`, 404, f, true, 'not-found');
  }
  await expectError('404 get one run (no such run)', 404, () => jobs.runs.one(P, J1, 'sdkchk-no-such-run'), true, 'not-found');
  await expectError('404 terminate (no such run)', 404, () => jobs.runs.terminate(P, J1, 'sdkchk-no-such-run'), true, 'not-found');

  await call('delete', () => jobs.delete(P, J1), () => 'deleted');
  await call('delete (every field)', () => jobs.delete(P, J2), () => 'deleted');
  await expectError('404 get after delete', 404, () => jobs.one(P, J1), true, 'not-found');

  // Calendar values the newest SDK would refuse to send (v0.3.12-only forms)
  // or does send (the last two).
  await rawCalendars(jobs, { configuration: {}, parameters: {} }, [
    ['"MON-FRI"', { dayOfWeek: 'MON-FRI' }], ['"JAN"', { month: 'JAN' }], ['"0"', { minute: '0' }],
    ['dayOfWeek 1', { dayOfWeek: 1 }], ['month 12', { month: 12 }], ['start "5"', { minute: { start: '5' } }],
    ['["*"]', { minute: ['*'] }], ['"*/5"', { hour: '*/5' }],
    ['[0,30] (valid)', { minute: [0, 30] }], ['names (valid)', { dayOfWeek: ['MONDAY', { start: 'FRIDAY' }] }],
  ]);
}

// Jobs created over raw HTTP with calendar values the SDK could not send:
// the emulator should refuse them (400), or else answer them in a form the
// SDK can read (get and list).
async function rawCalendars(jobs, base, cals) {
  const P = opt.project;
  let n = 0;
  for (const [label, cal] of cals) {
    const id = `sdkchk-raw-${++n}`;
    const res = await fetch(`${opt.url}/${opt.workspace}/projects/${P}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': opt.key },
      body: JSON.stringify({ id, payload: [{ apiName: 'a', parameters: base.parameters }], configuration: base.configuration,
        schedule: { calendars: [cal] } }),
    });
    const name = `raw calendar ${label}`;
    if (res.status === 400) { ok(name, 'refused at create (400)'); continue; }
    if (res.status !== 201) { fail(name, `create: HTTP ${res.status} ${await res.text()}`); continue; }
    await call(`${name}: get`, () => jobs.one(P, id), (v) => 'accepted; get reads ' + JSON.stringify(v.schedule));
    await call(`${name}: list`, () => jobs.all(P), () => 'list ok');
    await jobs.delete(P, id).catch(() => {});
  }
}

async function v0312() {
  const P = opt.project;
  const jobs = good.project.jobs;
  const J1 = 'sdkchk-defaults';
  const J2 = 'sdkchk-rich';
  const receiver = opt.url.replace(/\/api\/v1\/workspace\/?$/, '') + '/_receiver/sdkchk';

  await call('create (SDK defaults)', () => jobs.create(P, {
    id: J1,
    payload: [1, 2, 3].map((n) => ({ apiName: `sdkchk/p${n}`, parameters: { n } })),
    configuration: { runMode: 'Order-Irrelevant', maxConcurrentRequests: 1 },
  }));
  // the SDK adds step 1 to ranges, backoffCoefficient 1 and initialInterval "1s"
  await call('create (every field)', () => jobs.create(P, {
    id: J2,
    sink: { type: 'webhook', url: receiver, headers: { 'x-sdkchk': '1' } },
    payload: [{ apiName: 'sdkchk/b', parameters: ['x', 1] }],
    schedule: {
      intervals: [{ every: '1h' }],
      calendars: [{ minute: [{ start: 0 }, { start: 30 }], hour: 3, dayOfWeek: { start: 'MONDAY', end: 'FRIDAY' }, comment: 'weekdays' }],
    },
    authSession: { id: 'sdkchk-session' },
    configuration: { runMode: 'Order-Irrelevant', maxConcurrentRequests: 2, retry: { maximumAttempts: 2, maximumInterval: '10m' } },
  }));
  await call('get (SDK defaults)', () => jobs.one(P, J1));
  await call('get (every field)', () => jobs.one(P, J2));
  await call('list', () => jobs.all(P), (v) => `${v.length} jobs: ${JSON.stringify(v)}`);
  await call('pause', () => jobs.pause(P, J1));
  await call('get while paused', () => jobs.one(P, J1));
  await expectRefused('trigger while paused', () => jobs.trigger(P, J1));
  await call('resume', () => jobs.resume(P, J1));
  await call('trigger', () => jobs.trigger(P, J1));
  const runs = await call('list runs', () => jobs.runs.all(P, J1), (v) => `${v.length} runs: ${JSON.stringify(v)}`);
  const runId = runs && runs[0] && runs[0].id;
  if (runId) {
    await call('terminate', () => jobs.runs.terminate(P, J1, runId));
    await call('list runs (after terminate)', () => jobs.runs.all(P, J1), (v) => `statuses=${v.map((r) => r.status).join(',')}`);
  } else {
    fail('terminate', 'no run in the list');
  }

  const X = 'sdkchk-no-such-job';
  await expectError('400 create (bad id)', 400, () => jobs.create(P, { id: 'bad id!', payload: [{ apiName: 'a' }], configuration: { runMode: 'Order-Irrelevant' } }), true, 'ApiErrorInvalidInput');
  const ops = (c, job, run) => [
    ['list', () => c.project.jobs.all(P)],
    ['create', () => c.project.jobs.create(P, { id: 'sdkchk-401', payload: [{ apiName: 'a' }], configuration: { runMode: 'Order-Irrelevant' } })],
    ['get', () => c.project.jobs.one(P, job)],
    ['pause', () => c.project.jobs.pause(P, job)],
    ['resume', () => c.project.jobs.resume(P, job)],
    ['trigger', () => c.project.jobs.trigger(P, job)],
    ['list runs', () => c.project.jobs.runs.all(P, job)],
    ['terminate', () => c.project.jobs.runs.terminate(P, job, run)],
    ['delete', () => c.project.jobs.delete(P, job)],
  ];
  for (const [n, f] of ops(bad, J1, runId || 'x')) await expectError(`401 ${n}`, 401, f, true, 'ApiErrorUnauthorized');
  // v0.3.12 declares 404 without a body model: the generic SDKError is right
  for (const [n, f] of ops(good, X, 'sdkchk-no-such-run')) {
    if (n === 'list' || n === 'create') continue;
    await expectError(`404 ${n} (no such job)`, 404, f, false);
  }
  await expectError('404 terminate (no such run)', 404, () => jobs.runs.terminate(P, J1, 'sdkchk-no-such-run'), false);

  await call('delete', () => jobs.delete(P, J1), () => 'deleted');
  await call('delete (every field)', () => jobs.delete(P, J2), () => 'deleted');
  await expectError('404 get after delete', 404, () => jobs.one(P, J1), false);

  // v0.3.12's calendar arrays hold range objects only; a bare number or name
  // there is newest-only.  The last two fit v0.3.12.
  await rawCalendars(jobs, { configuration: { runMode: 'Order-Irrelevant' }, parameters: {} }, [
    ['[0,30]', { minute: [0, 30] }], ['["MONDAY"]', { dayOfWeek: ['MONDAY'] }],
    ['[{start:0},{start:30}] (valid)', { minute: [{ start: 0 }, { start: 30 }] }], ['"MON-FRI" (valid)', { dayOfWeek: 'MON-FRI' }],
  ]);
}

(async () => {
  console.log(`sdk-check: @intuned/client ${pkg.version} against ${opt.url} (--api-version ${opt.api})`);
  await (NEWEST ? newest() : v0312());
  await sleep(0);
  console.log(`sdk-check ${opt.api}: ${oks} ok, ${failures} failed`);
  process.exit(failures ? 1 : 0);
})().catch((e) => { console.error('check.js: ' + (e && e.stack || e)); process.exit(2); });
