// Framework-free entry point of the reactive client runtime.
export { Transport, RpcError, joinUrl, type TransportOptions, type RpcResult } from './client';
export { QueryRegistry, DEFAULT_MAX_BYTES, type RegistryEntry, type RegistrySession, type StorageLike } from './registry';
export { Realtime, type InvalidateEvent, type EventSourceLike, type EventSourceCtor, type RealtimeMode } from './realtime';
export { Scheduler, Priority } from './scheduler';
export { ReactiveClient, createReactiveClient, LOADING, type ClientOptions, type QuerySnapshot } from './core';
export type * from './types';
export { canonicalJson, queryKey, compareEventIds, type Clock } from './util';
