// Security rules driven by the real Firebase JS SDK (the modular `firebase` package, through
// `@firebase/rules-unit-testing`) against the Firestore emulator: the writes the app makes, in
// the shapes the SDK sends them (whole numbers as integers, NaN and Infinity as doubles, null
// for an empty field, dotted update paths, deleteField(), batches, transactions, listeners),
// each allowed, and hostile ones, each denied. tests/integration/test_rules.py covers the same
// ground over REST; tests/integration/test_rules_js.py runs this file inside scripts/test.sh's
// emulator session (it needs FIRESTORE_EMULATOR_HOST, which `firebase emulators:exec` sets).
//
// Every case starts from a fresh account written with the rules bypassed (as the backend
// writes), then does one thing as a signed-in user (or another user, or nobody).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import {
  assertFails,
  assertSucceeds,
  initializeTestEnvironment,
} from '@firebase/rules-unit-testing';
import {
  addDoc,
  collection,
  collectionGroup,
  deleteDoc,
  deleteField,
  doc,
  getDoc,
  getDocs,
  increment,
  onSnapshot,
  runTransaction,
  serverTimestamp,
  setDoc,
  setLogLevel,
  Timestamp,
  updateDoc,
  writeBatch,
} from 'firebase/firestore';

const PROJECT = process.env.GCLOUD_PROJECT || 'demo-cogmora';
const RULES = readFileSync(new URL('../../firestore.rules', import.meta.url), 'utf8');
const T0 = Timestamp.fromDate(new Date('2026-01-01T00:00:00Z'));
const LATER = Timestamp.fromDate(new Date('2026-06-01T00:00:00Z'));
const CASE_TIMEOUT_MS = 30_000;

const TRIGGER = Object.freeze({
  symbol: 'XBTUSDTM', symbolType: 'futures', condition: 'below', targetPrice: 60000,
  action: 'long', amount: 100, leverage: 3, stopLoss: 58000, takeProfit: 65000,
  details: { status: 'active' },
});
const SPOT_TRIGGER = Object.freeze({
  symbol: 'BTC-USDT', symbolType: 'spot', condition: 'above', targetPrice: 90000,
  action: 'buy', amount: 250.5, details: { status: 'active' },
});
const POSITION = Object.freeze({
  symbol: 'XBTUSDTM', symbolType: 'futures', positionType: 'long', size: 0.01,
  averageEntryPrice: 60000, leverage: 3, margin: 200, openFee: 0.36, liquidationPrice: 40300,
  openedAt: T0, sourceTriggerId: 'p1',
  details: { status: 'open', stopLoss: 58000, takeProfit: 65000 },
});

/** Return the futures trigger with `changes`; a change to `undefined` drops the field. */
function trig(changes = {}, base = TRIGGER) {
  const result = { ...base, ...changes };
  for (const [key, value] of Object.entries(result)) {
    if (value === undefined) delete result[key];
  }
  return result;
}
const spot = (changes = {}) => trig(changes, SPOT_TRIGGER);

/** Where FIRESTORE_EMULATOR_HOST points; fail (never skip) without it. */
function emulatorAddress() {
  const address = process.env.FIRESTORE_EMULATOR_HOST;
  if (!address) {
    throw new Error('FIRESTORE_EMULATOR_HOST is not set: run through scripts/test.sh '
      + '(tests/integration/test_rules_js.py), which starts the emulators');
  }
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(address.slice(colon + 1)) };
}

let env;

before(async () => {
  setLogLevel('error'); // denied requests are the point of half the cases
  env = await initializeTestEnvironment({
    projectId: PROJECT,
    firestore: { ...emulatorAddress(), rules: RULES },
  });
  await env.withSecurityRulesDisabled(async (context) => {
    await setDoc(doc(context.firestore(), 'config/trading'), { spotTakerFee: 0.001 });
  });
});

after(async () => {
  await env?.cleanup();
});

/** Write a complete account as the backend would (rules bypassed). */
async function world(uid) {
  await env.withSecurityRulesDisabled(async (context) => {
    const db = context.firestore();
    const batch = writeBatch(db);
    batch.set(doc(db, `users/${uid}`), {
      displayName: 'Ada', balance: 10000, createdAt: T0,
      automation: {
        ai: {
          enabled: false, intervalMinutes: 60, nextRun: T0, lastRun: T0, lastStatus: 'ok',
          lastError: null, autoExecute: false, maxRiskPercent: 1, lastPlanId: 'a1',
        },
        watchlist: { enabled: false, intervalMinutes: 15, nextRun: T0 },
      },
    });
    batch.set(doc(db, `users/${uid}/tradeTriggers/t1`), TRIGGER);
    batch.set(doc(db, `users/${uid}/tradeTriggers/tc`), trig({ details: { status: 'cancelled' } }));
    batch.set(doc(db, `users/${uid}/tradeTriggers/ai`),
      trig({ source: 'ai', planId: 'a1', rationale: 'breakout' }));
    batch.set(doc(db, `users/${uid}/tradeTriggers/bp`), trig({
      venue: 'backpack', symbol: 'SOL_USDC_PERP', targetPrice: 140, stopLoss: 130, takeProfit: 160,
    }));
    batch.set(doc(db, `users/${uid}/openPositions/p1`), POSITION);
    batch.set(doc(db, `users/${uid}/openPositions/pc`),
      { ...POSITION, details: { status: 'closing' } });
    batch.set(doc(db, `users/${uid}/executedTriggers/e0`),
      { ...TRIGGER, executedPrice: 59990, status: 'filled', positionId: 'p1' });
    batch.set(doc(db, `users/${uid}/tradeHistory/h1`),
      { positionId: 'h1', status: 'open', margin: 200 });
    batch.set(doc(db, `users/${uid}/aiPlans/a1`), { planId: 'a1', proposals: [] });
    batch.set(doc(db, `users/${uid}/ledger/funded`), {
      kind: 'funded', amount: 10000, balanceAfter: 10000, currency: 'USDT',
      ref: 'initializeAccount', symbol: null });
    batch.set(doc(db, `users/${uid}/watchlist/BTC-USDT`), { symbol: 'BTC-USDT', price: 87956.1 });
    await batch.commit();
  });
}

/** Resolve with the first snapshot of a listener on `ref`, or reject with its error. */
function firstSnapshot(ref) {
  return new Promise((resolve, reject) => {
    const stop = onSnapshot(ref, (snapshot) => { stop(); resolve(snapshot); },
      (error) => reject(error));
  });
}

/**
 * Write a fresh account; return its uid and the Firestore of `actor` ('self', 'other': another
 * signed-in user, or 'anon': nobody signed in).
 */
async function arrange(actor) {
  const uid = `js-${randomUUID().slice(0, 12)}`;
  await world(uid);
  const context = actor === 'self' ? env.authenticatedContext(uid)
    : actor === 'other' ? env.authenticatedContext(`intruder-${randomUUID().slice(0, 12)}`)
      : env.unauthenticatedContext();
  return { db: context.firestore(), uid };
}

const t = (db, uid, id = 'n') => doc(db, `users/${uid}/tradeTriggers/${id}`);
const p = (db, uid, id = 'p1') => doc(db, `users/${uid}/openPositions/${id}`);

// [name, act] or [name, act, actor]: each must succeed.
const ALLOWED = [
  // reads of one's own documents, one by one, listed and listened to
  ['read own account', (db, u) => getDoc(doc(db, `users/${u}`))],
  ['read own trigger', (db, u) => getDoc(t(db, u, 't1'))],
  ['read own position', (db, u) => getDoc(p(db, u))],
  ['read own execution', (db, u) => getDoc(doc(db, `users/${u}/executedTriggers/e0`))],
  ['read own history', (db, u) => getDoc(doc(db, `users/${u}/tradeHistory/h1`))],
  ['read own journal entry', (db, u) => getDoc(doc(db, `users/${u}/ledger/funded`))],
  ['read own ai plan', (db, u) => getDoc(doc(db, `users/${u}/aiPlans/a1`))],
  ['read own watchlist', (db, u) => getDoc(doc(db, `users/${u}/watchlist/BTC-USDT`))],
  ['read config', (db) => getDoc(doc(db, 'config/trading'))],
  ['list own triggers', (db, u) => getDocs(collection(db, `users/${u}/tradeTriggers`))],
  ['listen to own open positions',
    (db, u) => firstSnapshot(collection(db, `users/${u}/openPositions`))],
  // triggers of every shape, with venue null / absent / kucoin / backpack
  ['create futures trigger', (db, u) => setDoc(t(db, u), trig())],
  ['create trigger with an automatic id',
    (db, u) => addDoc(collection(db, `users/${u}/tradeTriggers`), trig())],
  ['create spot trigger, no venue, no leverage', (db, u) => setDoc(t(db, u), spot())],
  ['create market order', (db, u) => setDoc(t(db, u), trig({
    condition: 'market', targetPrice: undefined, stopLoss: undefined, takeProfit: undefined,
  }))],
  ['create market order with targetPrice null',
    (db, u) => setDoc(t(db, u), trig({ condition: 'market', targetPrice: null }))],
  ['create short trigger', (db, u) => setDoc(t(db, u), trig({
    action: 'short', condition: 'above', targetPrice: 70000, stopLoss: 72000, takeProfit: 65000,
  }))],
  ['create 100x trigger', (db, u) => setDoc(t(db, u), trig({ leverage: 100 }))],
  ['create trigger with venue kucoin', (db, u) => setDoc(t(db, u), trig({ venue: 'kucoin' }))],
  ['create trigger with venue null', (db, u) => setDoc(t(db, u), trig({ venue: null }))],
  ['create spot trigger with venue null', (db, u) => setDoc(t(db, u), spot({ venue: null }))],
  ['create spot trigger with leverage null',
    (db, u) => setDoc(t(db, u), spot({ leverage: null }))],
  ['create spot trigger with leverage 1', (db, u) => setDoc(t(db, u), spot({ leverage: 1 }))],
  ['create spot trigger with leverage null and venue null',
    (db, u) => setDoc(t(db, u), spot({ leverage: null, venue: null }))],
  ['create trigger with every optional field null', (db, u) => setDoc(t(db, u), spot({
    leverage: null, venue: null, stopLoss: null, takeProfit: null, trailingStop: null,
    ocoTriggerId: null,
  }))],
  ['create backpack perp trigger', (db, u) => setDoc(t(db, u), trig({
    venue: 'backpack', symbol: 'SOL_USDC_PERP', targetPrice: 140, stopLoss: 130, takeProfit: 160,
  }))],
  ['create backpack spot trigger',
    (db, u) => setDoc(t(db, u), spot({ venue: 'backpack', symbol: 'SOL_USDC' }))],
  ['create backpack spot trigger with leverage null',
    (db, u) => setDoc(t(db, u), spot({ venue: 'backpack', symbol: 'SOL_USDC', leverage: null }))],
  // trailing stops and OCO pairs
  ['create trigger with a trailing stop',
    (db, u) => setDoc(t(db, u), trig({ trailingStop: { percent: 2.5, activationPrice: 61000 } }))],
  ['create trigger with a trailing distance, other fields null', (db, u) => setDoc(t(db, u),
    trig({ trailingStop: { distance: 500, percent: null, activationPrice: null } }))],
  ['create an OCO pair in one batch', (db, u) => {
    const batch = writeBatch(db);
    batch.set(t(db, u, 'oa'), trig({ ocoTriggerId: 'ob' }));
    batch.set(t(db, u, 'ob'), trig({
      condition: 'above', targetPrice: 62000, stopLoss: null, takeProfit: null, ocoTriggerId: 'oa',
    }));
    return batch.commit();
  }],
  // editing, cancelling, deleting triggers
  ['replace active trigger', (db, u) => setDoc(t(db, u, 't1'), trig({ targetPrice: 59000 }))],
  ['edit trigger amount', (db, u) => updateDoc(t(db, u, 't1'), { amount: 150.25 })],
  ['edit trigger venue to null', (db, u) => updateDoc(t(db, u, 't1'), { venue: null })],
  ['edit a trigger with merge', (db, u) => setDoc(t(db, u, 't1'), { stopLoss: 57000 },
    { merge: true })],
  ['edit an ai trigger\'s level', (db, u) => updateDoc(t(db, u, 'ai'), { takeProfit: 66000 })],
  ['cancel trigger', (db, u) => updateDoc(t(db, u, 't1'), { 'details.status': 'cancelled' })],
  ['cancel a backpack trigger', (db, u) => updateDoc(t(db, u, 'bp'),
    { 'details.status': 'cancelled' })],
  ['cancel trigger in a transaction', (db, u) => runTransaction(db, async (tx) => {
    const snapshot = await tx.get(t(db, u, 't1'));
    assert.equal(snapshot.data().details.status, 'active');
    tx.update(t(db, u, 't1'), { 'details.status': 'cancelled' });
  })],
  ['delete trigger', (db, u) => deleteDoc(t(db, u, 't1'))],
  // positions: levels, trailing stop, manual close
  ['move stop-loss and take-profit', (db, u) => updateDoc(p(db, u),
    { 'details.stopLoss': 59000, 'details.takeProfit': 70000 })],
  ['remove stop-loss (null)', (db, u) => updateDoc(p(db, u), { 'details.stopLoss': null })],
  ['remove take-profit (deleteField)',
    (db, u) => updateDoc(p(db, u), { 'details.takeProfit': deleteField() })],
  ['set a trailing stop', (db, u) => updateDoc(p(db, u),
    { 'details.trailingStop': { distance: 500 } })],
  ['ask to close', (db, u) => updateDoc(p(db, u), { 'details.status': 'closing' })],
  // watchlist and profile
  ['watch a symbol', (db, u) => setDoc(doc(db, `users/${u}/watchlist/SOLUSDTM`),
    { symbol: 'SOLUSDTM' })],
  ['unwatch a symbol', (db, u) => deleteDoc(doc(db, `users/${u}/watchlist/BTC-USDT`))],
  ['rename', (db, u) => updateDoc(doc(db, `users/${u}`), { displayName: 'Grace' })],
  ['turn the ai agent on', (db, u) => updateDoc(doc(db, `users/${u}`), {
    'automation.ai.enabled': true, 'automation.ai.maxRiskPercent': 2.5,
    'automation.ai.autoExecute': true,
  })],
  ['set the watchlist interval', (db, u) => updateDoc(doc(db, `users/${u}`),
    { 'automation.watchlist.intervalMinutes': 30, 'automation.watchlist.enabled': true })],
];

// [name, act] or [name, act, actor]: each must be denied.
const DENIED = [
  // other users' documents
  ['read another\'s account', (db, u) => getDoc(doc(db, `users/${u}`)), 'other'],
  ['read another\'s position', (db, u) => getDoc(p(db, u)), 'other'],
  ['read another\'s execution',
    (db, u) => getDoc(doc(db, `users/${u}/executedTriggers/e0`)), 'other'],
  ['list another\'s triggers',
    (db, u) => getDocs(collection(db, `users/${u}/tradeTriggers`)), 'other'],
  ['listen to another\'s positions',
    (db, u) => firstSnapshot(collection(db, `users/${u}/openPositions`)), 'other'],
  ['list everyone\'s triggers', (db) => getDocs(collectionGroup(db, 'tradeTriggers'))],
  ['create a trigger for another', (db, u) => setDoc(t(db, u), trig()), 'other'],
  ['cancel another\'s trigger',
    (db, u) => updateDoc(t(db, u, 't1'), { 'details.status': 'cancelled' }), 'other'],
  ['delete another\'s trigger', (db, u) => deleteDoc(t(db, u, 't1')), 'other'],
  ['close another\'s position',
    (db, u) => updateDoc(p(db, u), { 'details.status': 'closing' }), 'other'],
  ['watch for another', (db, u) => setDoc(doc(db, `users/${u}/watchlist/SOLUSDTM`),
    { symbol: 'SOLUSDTM' }), 'other'],
  // signed out
  ['anonymous read account', (db, u) => getDoc(doc(db, `users/${u}`)), 'anon'],
  ['anonymous read config', (db) => getDoc(doc(db, 'config/trading')), 'anon'],
  ['anonymous create trigger', (db, u) => setDoc(t(db, u), trig()), 'anon'],
  // balance and bookkeeping
  ['set own balance', (db, u) => updateDoc(doc(db, `users/${u}`), { balance: 1e9 })],
  ['increment own balance', (db, u) => updateDoc(doc(db, `users/${u}`),
    { balance: increment(1) })],
  ['merge a balance in', (db, u) => setDoc(doc(db, `users/${u}`), { balance: 10001 },
    { merge: true })],
  ['set createdAt', (db, u) => updateDoc(doc(db, `users/${u}`), { createdAt: LATER })],
  ['set nextRun', (db, u) => updateDoc(doc(db, `users/${u}`),
    { 'automation.ai.nextRun': LATER })],
  ['set lastPlanId', (db, u) => updateDoc(doc(db, `users/${u}`),
    { 'automation.ai.lastPlanId': 'x' })],
  ['replace the automation map', (db, u) => updateDoc(doc(db, `users/${u}`),
    { automation: { ai: { enabled: true } } })],
  ['delete own account', (db, u) => deleteDoc(doc(db, `users/${u}`))],
  ['create account with a balance', (db, u) => setDoc(doc(db, `users/${u}-new`),
    { displayName: 'x', balance: 1e6 })],
  // positions
  ['forge a close request', (db, u) => updateDoc(p(db, u),
    { 'details.closeRequest': { reason: 'manual', price: 1e6 } })],
  ['close at a price', (db, u) => updateDoc(p(db, u), {
    'details.status': 'closing', 'details.closeRequest': { reason: 'take_profit', price: 99999 },
  })],
  ['change size', (db, u) => updateDoc(p(db, u), { size: 100 })],
  ['change entry', (db, u) => updateDoc(p(db, u), { averageEntryPrice: 1 })],
  ['create a position', (db, u) => setDoc(p(db, u, 'n'), POSITION)],
  ['delete a position', (db, u) => deleteDoc(p(db, u))],
  ['stop-loss above entry', (db, u) => updateDoc(p(db, u), { 'details.stopLoss': 61000 })],
  ['stop-loss NaN', (db, u) => updateDoc(p(db, u), { 'details.stopLoss': NaN })],
  ['stop-loss as text', (db, u) => updateDoc(p(db, u), { 'details.stopLoss': '58000' })],
  ['reopen a closing position', (db, u) => updateDoc(p(db, u, 'pc'), { 'details.status': 'open' })],
  ['move levels while closing', (db, u) => updateDoc(p(db, u, 'pc'),
    { 'details.stopLoss': 59000 })],
  ['write a trailing peak', (db, u) => updateDoc(p(db, u), { trailing: { highWaterMark: 1 } })],
  // executions, history, plans, config
  ['forge an execution', (db, u) => setDoc(doc(db, `users/${u}/executedTriggers/n`),
    { ...TRIGGER, executedPrice: 1, status: 'pending' })],
  ['mark an execution', (db, u) => updateDoc(doc(db, `users/${u}/executedTriggers/e0`),
    { status: 'rejected' })],
  ['edit history pnl', (db, u) => updateDoc(doc(db, `users/${u}/tradeHistory/h1`),
    { pnl: 1e6 })],
  ['forge a plan', (db, u) => setDoc(doc(db, `users/${u}/aiPlans/n`), { proposals: [] })],
  ['forge a journal entry', (db, u) => setDoc(doc(db, `users/${u}/ledger/gift`),
    { kind: 'adjustment', amount: 1e6, balanceAfter: 1e6, currency: 'USDT', ref: 'me' })],
  ['edit a journal entry', (db, u) => updateDoc(doc(db, `users/${u}/ledger/funded`),
    { amount: 1e6 })],
  ['read another\'s journal', (db, u) => getDoc(doc(db, `users/${u}/ledger/funded`)), 'other'],
  ['write config', (db) => updateDoc(doc(db, 'config/trading'), { spotTakerFee: 0 })],
  // trigger values
  ['amount 0', (db, u) => setDoc(t(db, u), trig({ amount: 0 }))],
  ['amount negative', (db, u) => setDoc(t(db, u), trig({ amount: -100 }))],
  ['amount NaN', (db, u) => setDoc(t(db, u), trig({ amount: NaN }))],
  ['amount Infinity', (db, u) => setDoc(t(db, u), trig({ amount: Infinity }))],
  ['amount as text', (db, u) => setDoc(t(db, u), trig({ amount: '100' }))],
  ['amount astronomical', (db, u) => setDoc(t(db, u), trig({ amount: 1e15 }))],
  ['amount null', (db, u) => setDoc(t(db, u), trig({ amount: null }))],
  ['leverage 0', (db, u) => setDoc(t(db, u), trig({ leverage: 0 }))],
  ['leverage 101', (db, u) => setDoc(t(db, u), trig({ leverage: 101 }))],
  ['leverage 2.5', (db, u) => setDoc(t(db, u), trig({ leverage: 2.5 }))],
  ['futures without leverage', (db, u) => setDoc(t(db, u), trig({ leverage: undefined }))],
  ['futures with leverage null', (db, u) => setDoc(t(db, u), trig({ leverage: null }))],
  ['edit futures leverage to null', (db, u) => updateDoc(t(db, u, 't1'), { leverage: null })],
  ['spot with leverage 3', (db, u) => setDoc(t(db, u), spot({ leverage: 3 }))],
  ['spot with leverage as text', (db, u) => setDoc(t(db, u), spot({ leverage: '1' }))],
  ['futures buy', (db, u) => setDoc(t(db, u), trig({ action: 'buy' }))],
  ['spot short', (db, u) => setDoc(t(db, u), spot({ action: 'short' }))],
  ['unknown symbol type', (db, u) => setDoc(t(db, u), trig({ symbolType: 'options' }))],
  ['lowercase symbol', (db, u) => setDoc(t(db, u), trig({ symbol: 'xbtusdtm' }))],
  ['inverse contract', (db, u) => setDoc(t(db, u), trig({ symbol: 'XBTUSDM' }))],
  ['unknown condition', (db, u) => setDoc(t(db, u), trig({ condition: 'sideways' }))],
  ['above without target', (db, u) => setDoc(t(db, u), trig({ targetPrice: undefined }))],
  ['below with target null', (db, u) => setDoc(t(db, u), trig({ targetPrice: null }))],
  ['market with a target', (db, u) => setDoc(t(db, u), trig({ condition: 'market' }))],
  ['long stop above target', (db, u) => setDoc(t(db, u), trig({ stopLoss: 61000 }))],
  ['long take-profit below target', (db, u) => setDoc(t(db, u), trig({ takeProfit: 59000 }))],
  ['unknown trigger field', (db, u) => setDoc(t(db, u), trig({ priority: 'high' }))],
  ['a server timestamp on a trigger',
    (db, u) => setDoc(t(db, u), trig({ createdAt: serverTimestamp() }))],
  ['create already executed',
    (db, u) => setDoc(t(db, u), trig({ details: { status: 'executed' } }))],
  ['create with an error',
    (db, u) => setDoc(t(db, u), trig({ details: { status: 'active', error: 'none' } }))],
  ['create cancelled', (db, u) => setDoc(t(db, u), trig({ details: { status: 'cancelled' } }))],
  // venues
  ['other venue', (db, u) => setDoc(t(db, u), trig({ venue: 'bybit' }))],
  ['venue capitalised', (db, u) => setDoc(t(db, u),
    trig({ venue: 'Backpack', symbol: 'SOL_USDC_PERP' }))],
  ['venue empty', (db, u) => setDoc(t(db, u), trig({ venue: '' }))],
  ['backpack venue, kucoin futures symbol',
    (db, u) => setDoc(t(db, u), trig({ venue: 'backpack' }))],
  ['venue null, backpack perp symbol',
    (db, u) => setDoc(t(db, u), trig({ venue: null, symbol: 'SOL_USDC_PERP' }))],
  ['no venue, backpack spot symbol', (db, u) => setDoc(t(db, u), spot({ symbol: 'SOL_USDC' }))],
  ['edit a backpack trigger\'s venue to null',
    (db, u) => updateDoc(t(db, u, 'bp'), { venue: null })],
  ['edit a trigger onto another venue',
    (db, u) => updateDoc(t(db, u, 't1'), { venue: 'backpack' })],
  // trailing stops and OCO links
  ['trailing stop with two offsets',
    (db, u) => setDoc(t(db, u), trig({ trailingStop: { percent: 1, distance: 5 } }))],
  ['trailing stop of 80 percent',
    (db, u) => setDoc(t(db, u), trig({ trailingStop: { percent: 80 } }))],
  ['trailing stop of 80 percent, distance null',
    (db, u) => setDoc(t(db, u), trig({ trailingStop: { percent: 80, distance: null } }))],
  ['trailing stop with both offsets null',
    (db, u) => setDoc(t(db, u), trig({ trailingStop: { percent: null, distance: null } }))],
  ['trailing stop with an unknown key',
    (db, u) => setDoc(t(db, u), trig({ trailingStop: { percent: 1, peak: 1 } }))],
  ['one-sided OCO link', (db, u) => setDoc(t(db, u), trig({ ocoTriggerId: 't1' }))],
  ['OCO link to itself', (db, u) => setDoc(t(db, u), trig({ ocoTriggerId: 'n' }))],
  // status jumps on triggers
  ['revive a cancelled trigger',
    (db, u) => updateDoc(t(db, u, 'tc'), { 'details.status': 'active' })],
  ['edit a cancelled trigger', (db, u) => updateDoc(t(db, u, 'tc'), { amount: 1 })],
  ['reject own trigger', (db, u) => updateDoc(t(db, u, 't1'), { 'details.status': 'rejected' })],
  ['cancel and resize', (db, u) => updateDoc(t(db, u, 't1'),
    { 'details.status': 'cancelled', amount: 1e6 })],
  ['edit an ai trigger\'s plan', (db, u) => updateDoc(t(db, u, 'ai'), { planId: 'forged' })],
  ['edit to an invalid level', (db, u) => updateDoc(t(db, u, 't1'), { stopLoss: 70000 })],
  // watchlist
  ['watch with scraped data', (db, u) => setDoc(doc(db, `users/${u}/watchlist/SOLUSDTM`),
    { symbol: 'SOLUSDTM', price: 1 })],
  ['watch under another id', (db, u) => setDoc(doc(db, `users/${u}/watchlist/SOLUSDTM`),
    { symbol: 'ETHUSDTM' })],
  ['edit scraped price', (db, u) => updateDoc(doc(db, `users/${u}/watchlist/BTC-USDT`),
    { price: 1 })],
];

describe('the app\'s writes through the Firebase JS SDK are allowed', () => {
  for (const [name, act, actor = 'self'] of ALLOWED) {
    test(name, { timeout: CASE_TIMEOUT_MS }, async () => {
      const { db, uid } = await arrange(actor);
      await assertSucceeds(act(db, uid));
    });
  }
});

describe('hostile writes through the Firebase JS SDK are denied', () => {
  for (const [name, act, actor = 'self'] of DENIED) {
    test(name, { timeout: CASE_TIMEOUT_MS }, async () => {
      const { db, uid } = await arrange(actor);
      await assertFails(act(db, uid));
    });
  }
});

test('the suite has enough cases, each named once', () => {
  assert.ok(ALLOWED.length >= 40 && DENIED.length >= 80,
    `${ALLOWED.length} allowed, ${DENIED.length} denied`);
  const names = [...ALLOWED, ...DENIED].map(([name]) => name);
  assert.equal(new Set(names).size, names.length);
});

test('an allowed write lands as the SDK sent it: null venue and null spot leverage', async () => {
  const { db, uid } = await arrange('self');
  await assertSucceeds(setDoc(t(db, uid), spot({ venue: null, leverage: null })));
  const written = (await getDoc(t(db, uid))).data();
  assert.deepEqual(written, { ...SPOT_TRIGGER, venue: null, leverage: null });
});
