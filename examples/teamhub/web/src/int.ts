// 64-bit integer fields (`createdAt`, counts) are JSON numbers on the wire. ts-rs types Rust `i64`
// as `bigint` unless configured otherwise, so the page never relies on which one the generated types
// say: these helpers compile with either and work on the numbers the server actually sends.

/** `n + 1` for a count field. */
export function plusOne<T extends number | bigint>(n: T): T {
  return (Number(n) + 1) as unknown as T;
}

/** Now, as a timestamp field (milliseconds since the epoch, like the server's). */
export function nowStamp<T extends number | bigint>(): T {
  return Date.now() as unknown as T;
}

/** A timestamp field as a date string. */
export function dateOf(stamp: number | bigint): string {
  return new Date(Number(stamp)).toLocaleDateString();
}
