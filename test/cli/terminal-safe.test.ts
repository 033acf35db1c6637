// What operators' commands print from dead letters is text any producer wrote: escape sequences in a header
// name or a correlation id set the window title, cleared the screen and hid what followed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compactTable, printableJson, terminalSafe } from '../../src/cli/options.ts';

// eslint-disable-next-line no-control-regex -- the characters that must not reach a terminal
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;

describe('terminalSafe', () => {
  it('shows controls, C1 controls and reordering marks as escapes, and leaves other text alone', () => {
    expect(terminalSafe('\x1b]0;PWNED\x07\x1b[2J')).toBe('\\u{1b}]0;PWNED\\u{7}\\u{1b}[2J');
    expect(terminalSafe('a\u009b31mb\u202Ec')).toBe('a\\u{9b}31mb\\u{202e}c');
    expect(terminalSafe('ünïcødé 日本 ✓')).toBe('ünïcødé 日本 ✓');
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(terminalSafe(text)).not.toMatch(UNSAFE);
      }),
    );
  });

  it('is applied to every cell and name of a table', () => {
    const rows = compactTable(['a', 'b']);
    rows.push(['\x1b[8mhidden', 'ok']);
    const vertical = compactTable();
    vertical.push({ '\x1b]0;title\x07': '\u202Eevil' });
    for (const printed of [rows.toString(), vertical.toString()]) {
      // cli-table3 draws no colours here (style without colours): any escape would be the input's.
      expect(printed.replaceAll('\n', '')).not.toMatch(UNSAFE);
    }
    expect(vertical.toString()).toContain('\\u{1b}]0;title\\u{7}');
  });
});

describe('printableJson', () => {
  it('is the same JSON, with nothing a terminal acts on, for any value (a pattern name is any text)', () => {
    expect(printableJson({ name: 'a\u200b\u2028\ufeff' })).toBe('{"name":"a\\u200b\\u2028\\ufeff"}');
    expect(printableJson({ name: 'a\u009b31mb\u202Ec' }, 2)).toBe('{\n  "name": "a\\u009b31mb\\u202ec"\n}');
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), fc.constantFrom(undefined, 2), (value, indent) => {
        const printed = printableJson(value, indent);
        expect(JSON.parse(printed)).toEqual(JSON.parse(JSON.stringify(value)));
        expect(printed.replaceAll('\n', '')).not.toMatch(UNSAFE);
      }),
    );
  });
});
