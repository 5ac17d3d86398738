/**
 * For tests of a model with several instances: affineFeeds (affine-prepare.ts), but the module
 * refuses to load in a worker with an even thread id. Workers started together get consecutive
 * ids, so of two, exactly one fails to start.
 */
import { threadId } from 'node:worker_threads';

if (threadId % 2 === 0) throw new Error(`odd-thread-prepare does not load in thread ${threadId}`);

export { affineFeeds } from './affine-prepare';
