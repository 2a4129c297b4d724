// ecos-stream replacement for kafkajs/src/consumer/filterAbortedMessages.js (kafkajs 2.2.4), installed
// by deploy/patches/apply.cjs at `npm install`. See deploy/patches/README.md for why.
//
// A read_committed fetch returns the partition's records up to the last stable offset together with the
// aborted transactions that overlap them (producer id, first offset). The broker lists those in the
// order their ABORT markers were written, which is not the order of their first offsets when
// transactions of several producers interleave. Records are dropped when they are transactional and
// belong to a producer whose aborted transaction has started (first offset <= record offset) and whose
// ABORT marker has not been passed yet. Control records pass through (kafkajs drops them afterwards).
"use strict";

const ECOS_PATCH = "ecos-stream read_committed filter v1";

const ABORT_KEY = Buffer.from([0, 0, 0, 0]);

function isAbortMarker(message) {
  return Boolean(message.key) && Buffer.from(message.key).equals(ABORT_KEY);
}

function filterAbortedMessages({ messages, abortedTransactions }) {
  if (!abortedTransactions || abortedTransactions.length === 0) return messages;
  const pending = abortedTransactions
    .map((t) => ({ producerId: String(t.producerId), first: BigInt(String(t.firstOffset)) }))
    .sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const aborting = new Set();
  let next = 0;
  return messages.filter((message) => {
    const offset = BigInt(String(message.offset));
    while (next < pending.length && pending[next].first <= offset) aborting.add(pending[next++].producerId);
    const context = message.batchContext || {};
    const producerId = String(context.producerId);
    if (message.isControlRecord) {
      if (isAbortMarker(message)) aborting.delete(producerId);
      return true;
    }
    return !(context.inTransaction && aborting.has(producerId));
  });
}

module.exports = filterAbortedMessages;
module.exports.ECOS_PATCH = ECOS_PATCH;
