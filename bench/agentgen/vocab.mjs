// The shared vocabulary (families.json) and the planning of agent sessions
// from a seed: which agent and task family, the task's sentences and slot
// values, how many steps, which failure is planted, which sessions are
// near-duplicates of which, and what feedback is given.  Planning draws every
// random number before anything is sent, so a seed gives the same plan
// whatever the network does; bench/curate/fill.c follows the same rules in C
// (same families, same shares) with its own generator.
import fs from 'node:fs';
import path from 'node:path';

export const FAMILIES_FILE = path.join(path.dirname(new URL(import.meta.url).pathname), 'families.json');

export function loadVocab(file = FAMILIES_FILE) {
  const v = JSON.parse(fs.readFileSync(file, 'utf8'));
  const agents = new Map(v.agents.map((a) => [a.name, a]));
  for (const f of v.families) {
    if (!agents.has(f.agent)) throw new Error(`${file}: family ${f.name}: unknown agent ${f.agent}`);
    if (!(f.tools?.length >= 2)) throw new Error(`${file}: family ${f.name}: needs two tools`);
  }
  return { ...v, agentByName: agents };
}

/** mulberry32: a small, fast 32-bit generator; plenty for choosing words. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (list) => list[Math.floor(next() * list.length)];
  return next;
}

/** One value for a slot spec: a list, "#N" (N digits, no leading zero), or "@person|@city|@month|@money". */
export function drawSlot(spec, pools, r) {
  if (Array.isArray(spec)) return r.pick(spec);
  if (/^#[0-9]+$/.test(spec)) {
    const n = Number(spec.slice(1));
    let s = String(1 + r.int(9));
    for (let i = 1; i < n; i++) s += String(r.int(10));
    return s;
  }
  switch (spec) {
    case '@person': return `${r.pick(pools.first)} ${r.pick(pools.last)}`;
    case '@city': return r.pick(pools.city);
    case '@month': return r.pick(pools.month);
    case '@money': return `${19 + r.int(480)}.${String(r.int(100)).padStart(2, '0')}`;
    default: throw new Error(`families.json: unknown slot spec ${JSON.stringify(spec)}`);
  }
}

/** Replaces every {slot} of a template with its value (a {name} that is not a slot stays as it is). */
export function expand(template, slots) {
  return template.replace(/\{([a-z_]+)\}/g, (m, k) => (k in slots ? slots[k] : m));
}

// A task's seven sentences: the family's five (0-4) with the two shared context sentences (5, 6) after the
// third and the fourth; `order` is a permutation of these positions.
export const TASK_ORDER = [0, 1, 2, 5, 3, 6, 4];

/** The user's task: the chosen alternative of each sentence, in `order`, with the slots filled. */
export function taskText(fam, plan, vocab) {
  const sentence = (i) => (i < 5 ? fam.task[i][plan.parts[i]] : vocab.context[plan.context[i - 5]]);
  return plan.order.map((i) => expand(sentence(i), plan.slots)).join(' ');
}

// Shares of sessions (bench/agentgen/README.md lists them; fill.c uses the same).
export const SHARES = {
  dup: 0.10,          // sessions that are a near-duplicate of an earlier one
  refusal: 0.05,      // the last answer refuses
  invalid_json: 0.05, // JSON asked for, text answered
  error: 0.04,        // the last call fails upstream (gyre-mock's 500)
  slow: 0.03,         // the last call's first byte comes after 2 s
  four_steps: 0.35,   // two tool calls (a follow-up turn) instead of one
  stream: 0.25,       // the final answer is streamed
  feedback: 0.30,     // the final trace gets feedback
};

export const FAILURES = ['refusal', 'invalid_json', 'error', 'slow'];

/** The slots an edit may change: a name or a number ("@person", "#N", "@money") that the task's sentences hold. */
function editableSlots(fam, plan, vocab) {
  const text = taskText(fam, plan, vocab);
  return Object.keys(fam.slots).filter((k) => /^(@person|@money|#[0-9]+)$/.test(fam.slots[k]) && text.includes(plan.slots[k]));
}

/**
 * Plans `n` sessions from `seed`.  Each: {index, id, agent, family, user,
 * slots, parts, context, order, steps (2 or 4), failure, stream, dupOf (the original's
 * id or null), edit, feedback}.  A near-duplicate copies an earlier original
 * (never another duplicate) and makes one small edit: a slot value (a name
 * or number) changed, or two neighbouring sentences swapped.
 */
export function planSessions(vocab, seed, n, prefix = `ag${seed}`) {
  const r = rng(seed * 2654435761 + 12345);
  const fams = vocab.families;
  const total = fams.reduce((s, f) => s + f.weight, 0);
  const pickFamily = () => {
    let x = r() * total;
    for (const f of fams) { if ((x -= f.weight) < 0) return f; }
    return fams[fams.length - 1];
  };
  const shuffle = (a) => {
    for (let i = a.length - 1; i > 0; i--) { const j = r.int(i + 1); [a[i], a[j]] = [a[j], a[i]]; }
    return a;
  };
  // Exact shares, not draws, so that even 20 sessions hold every kind: round(dup * n) duplicates (never the
  // first session), and of the originals ceil(share * originals) of each failure, in shuffled places.
  const ndup = n >= 2 ? Math.round(SHARES.dup * n) : 0;
  const isDup = new Set(shuffle(Array.from({ length: n - 1 }, (_, i) => i + 1)).slice(0, ndup));
  const norig = n - ndup;
  let failures = [];
  for (const k of FAILURES) for (let j = 0; j < Math.ceil(SHARES[k] * norig); j++) failures.push(k);
  failures = shuffle([...failures.slice(0, norig), ...Array(Math.max(0, norig - failures.length)).fill(null)]);
  const sessions = [];
  const originals = [];
  for (let i = 0; i < n; i++) {
    const id = `${prefix}-${String(i).padStart(6, '0')}`;
    const user = `user-${String(r.int(400)).padStart(3, '0')}`;
    let s;
    if (isDup.has(i)) {
      const o = r.pick(originals);
      const fam = fams.find((f) => f.name === o.family);
      s = { ...o, index: i, id, dupOf: o.dupGroup, slots: { ...o.slots }, order: [...o.order], feedback: null };
      const editable = editableSlots(fam, s, vocab);
      // Duplicates alternate between the two edits.
      if ((i - originals.length) % 2 === 1 && editable.length > 0) {
        const k = r.pick(editable);
        let v = s.slots[k];
        for (let t = 0; t < 20 && v === s.slots[k]; t++) v = drawSlot(fam.slots[k], vocab.pools, r);
        s.slots[k] = v;
        s.edit = `slot ${k}`;
      } else {
        // Two neighbouring middle sentences trade places: the same request, reordered.
        const j = 1 + r.int(s.order.length - 3);
        [s.order[j], s.order[j + 1]] = [s.order[j + 1], s.order[j]];
        s.edit = 'reorder';
      }
    } else {
      const fam = pickFamily();
      const slots = {};
      for (const [k, spec] of Object.entries(fam.slots)) slots[k] = drawSlot(spec, vocab.pools, r);
      const parts = fam.task.map((alts) => r.int(alts.length));
      const c0 = r.int(vocab.context.length);
      const context = [c0, (c0 + 1 + r.int(vocab.context.length - 1)) % vocab.context.length];
      const order = [...TASK_ORDER];
      const failure = failures[originals.length];
      // JSON is asked for in two-step sessions only, so that the one text answer is the planted failure.
      const steps = failure !== 'invalid_json' && r() < SHARES.four_steps ? 4 : 2;
      s = {
        index: i, id, agent: fam.agent, family: fam.name, user, slots, parts, context, order, steps, failure,
        stream: r() < SHARES.stream, refusal: r.int(vocab.refusals.length), followup: r.int(fam.followups.length),
        answer: r.int(fam.answers.length), dupOf: null, dupGroup: id, edit: null, feedback: null,
      };
      originals.push(s);
    }
    s.user = user;
    if (r() < SHARES.feedback) {
      // Thumbs down and a low rating for a planted failure, mostly up otherwise; a correction (the answer
      // the agent should have given) with a third of the thumbs down.
      const bad = s.failure !== null || r() < 0.15;
      const fam = fams.find((f) => f.name === s.family);
      s.feedback = {
        thumbs: !bad,
        rating: bad ? 1 + r.int(2) : 3 + r.int(3),
        correction: bad && r() < 0.34 ? expand(fam.answers[s.answer], s.slots) : null,
      };
    }
    sessions.push(s);
  }
  // A group is an original with at least one duplicate; a session alone has none.
  const size = new Map();
  for (const s of sessions) size.set(s.dupGroup, (size.get(s.dupGroup) || 0) + 1);
  for (const s of sessions) if (size.get(s.dupGroup) < 2) s.dupGroup = null;
  return sessions;
}
