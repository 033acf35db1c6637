// An outbound record's headers (a map, or entries in wire order) as a map by name, for assertions: a
// name that repeats holds its values in order, as inbound maps do.
import { headerEntries, type OutboundHeaders } from '../../src/messaging/engine/records.ts';

export type HeaderView = Record<string, Buffer | string | null | (Buffer | string | null)[]>;

export function headersOf(record: { headers: OutboundHeaders }): HeaderView {
  const view: HeaderView = Object.create(null) as HeaderView;
  for (const [rawName, value] of headerEntries(record.headers)) {
    const name = Buffer.isBuffer(rawName) ? rawName.toString('utf8') : String(rawName);
    const v = value as Buffer | string | null;
    const prev = view[name];
    if (prev === undefined) view[name] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else view[name] = [prev, v];
  }
  return view;
}
