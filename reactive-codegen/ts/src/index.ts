// Framework-free entry point of the reactive client runtime.
export { Transport, RpcError, joinUrl, type TransportOptions, type RpcResult } from './client.js';
export { QueryRegistry, DEFAULT_MAX_BYTES, type RegistryEntry, type RegistrySession, type StorageLike } from './registry.js';
export { Realtime, type InvalidateEvent, type EventSourceLike, type EventSourceCtor, type RealtimeMode } from './realtime.js';
export { Scheduler, Priority } from './scheduler.js';
export { ReactiveClient, createReactiveClient, LOADING, type ClientOptions, type QuerySnapshot } from './core.js';
export type * from './types.js';
export { canonicalJson, queryKey, compareEventIds, type Clock } from './util.js';
