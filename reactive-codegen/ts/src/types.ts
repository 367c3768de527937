// Type-level description of the generated procedure map.
//
// Generated code (`procedures.ts`) declares
//
//   export interface Procedures {
//     'agents.findMany': { kind: 'query'; input: OrgInput; output: Agent[]; dependencies: ['agent'] };
//     'agents.create': { kind: 'mutation'; input: NewAgent; output: Agent; dependencies: ['agent'] };
//   }
//   export const procedures = {
//     'agents.findMany': { kind: 'query', dependencies: ['agent'] },
//     'agents.create': { kind: 'mutation', dependencies: ['agent'] },
//   } as const satisfies ProcedureMeta<Procedures>;
//
// and every API of the runtime is generic over such a map.

/** One procedure: its kind, input, output and the tables it depends on. */
export interface ProcedureDef {
  kind: 'query' | 'mutation';
  input: unknown;
  output: unknown;
  dependencies: readonly string[];
}

/** A procedure map: `interface Procedures { [name]: ProcedureDef }` (interfaces welcome). */
export type ProcedureMap<P> = { [K in keyof P]: ProcedureDef };

/** Any map, for untyped use. */
export type AnyProcedures = Record<string, ProcedureDef>;

/** Names of the queries of `P` (any string for an untyped map). */
export type QueryName<P> = string extends keyof P ? string : {
  [K in keyof P]: P[K] extends { kind: 'query' } ? K : never;
}[keyof P] &
  string;

/** Names of the mutations of `P` (any string for an untyped map). */
export type MutationName<P> = string extends keyof P ? string : {
  [K in keyof P]: P[K] extends { kind: 'mutation' } ? K : never;
}[keyof P] &
  string;

/** Input type of procedure `K`. */
export type InputOf<P, K extends keyof P> = P[K] extends { input: infer I } ? I : never;

/** Output type of procedure `K`. */
export type OutputOf<P, K extends keyof P> = P[K] extends { output: infer O } ? O : never;

/** Runtime metadata the generated file exports next to the types. */
export type ProcedureMeta<P> = {
  readonly [K in keyof P]: {
    readonly kind: P[K] extends { kind: infer Kd } ? Kd : never;
    readonly dependencies: readonly string[];
  };
};

/** A `[name, input]` pair naming one query (for hints and optimistic updates). */
export type QueryRef<P> = { [K in QueryName<P>]: readonly [K, InputOf<P, K>] }[QueryName<P>];
