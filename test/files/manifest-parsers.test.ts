/**
 * parseManifestText reads most files with js-yaml for speed; the `yaml` package is the reference. Both
 * must give the same documents and the same errors, whatever the text: examples, generated YAML, the
 * constructs on which the two parsers were seen to differ, and fuzzed texts.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { fastParserMayRead, parseManifestText } from "../../src/files/manifest-source.ts";

function expectSameAsReference(text: string): void {
  const outcome = (parser: "auto" | "reference") => {
    try {
      return parseManifestText(text, "f.yaml", parser);
    } catch (error) {
      // The reference parser throws on some texts (an unresolved alias); the fast path must too.
      return { thrown: String(error) };
    }
  };
  // toStrictEqual: -0, NaN and Infinity must be the same values, not only print the same.
  const reference = outcome("reference");
  expect(outcome("auto")).toStrictEqual(reference);
  // js-yaml reads pieces of 100 documents; cut at every document (and every other), the same again.
  for (const every of [1, 2]) {
    let piecewise: unknown;
    try {
      piecewise = parseManifestText(text, "f.yaml", "auto", every);
    } catch (error) {
      piecewise = { thrown: String(error) };
    }
    expect(piecewise).toStrictEqual(reference);
  }
}

/** fastParserMayRead as it was before its cheap tests were made cheaper (verbatim): the reference for them. */
const OLD_REFERENCE_ONLY: readonly { may: (text: string) => boolean; pattern: RegExp }[] = [
  { may: (t) => t.includes("\t") || t.includes("\r"), pattern: /[\t\r]/ },
  { may: (t) => /[!*&%@`?]/.test(t), pattern: /(?:^|[\s[{,"'])[!*&%@`?]/m },
  { may: (t) => t.startsWith("...") || t.includes("\n..."), pattern: /^\.\.\./m },
  { may: (t) => t.includes(" ---") || t.includes(" ..."), pattern: /^[ ]+(?:---|\.\.\.)(?:\s|$)/m },
  { may: (t) => /(?:^|[\s[{,]):/.test(t), pattern: /(?:^|[\s[{,]):(?:\s|$|[,\]}])/m },
  { may: (t) => /[|>][-+]?\d/.test(t), pattern: /(?:^|\s)[|>][-+]?\d/m },
  { may: (t) => t.includes("\\\n") || t.includes("\\\r"), pattern: /\\\r?\n/ },
  { may: (t) => t.includes("0x"), pattern: /0x[0-9a-fA-F]{200}/ },
  {
    may: (t) => /-[ ]+['"]/.test(t),
    pattern: /-[ ]+(?:'[^'\n]*(?:''[^'\n]*)*'|"[^"\\\n]*(?:\\.[^"\\\n]*)*")[ ]*[^\s:,\]}#]/,
  },
  { may: () => true, pattern: /\d{200}|[eE][-+]?\d{3}/ },
];

/** The old line-by-line walk, as a split: a line over 1024 characters whose ":" indicators look like a long key. */
function oldHasLongKeyLine(text: string): boolean {
  return text.split("\n").some((line) => {
    if (line.length <= 1024) return false;
    const at = Array.from(line.matchAll(/:(?=\s|$)/g), (m) => m.index);
    return at.length !== 1 || (at[0] ?? 0) > 1000;
  });
}

function referenceMayRead(text: string): boolean {
  return !OLD_REFERENCE_ONLY.some((c) => c.may(text) && c.pattern.test(text)) && !oldHasLongKeyLine(text);
}

const examples = readdirSync("examples")
  .filter((f) => f.endsWith(".yaml"))
  .map((f) => join("examples", f));

/** One VirtualService and one RealServer as the engine bench writes them. */
const benchManifest = `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata:
  name: vs-1
  namespace: ns-1
spec:
  address: 10.0.0.1
  port: 80
  protocol: TCP
  scheduler: wrr
  forwarding:
    method: NAT
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata:
  name: vs-1-rs-0
  namespace: ns-1
spec:
  virtualServiceRef:
    name: vs-1
  address: 172.16.0.10
  port: 8080
  weight: 1
`;

/** Texts on which js-yaml 5 and yaml 2 disagree (or did, before the schema was adjusted). */
const disagreements = [
  "~: a\n",
  "null: 1\n",
  "a:\n  : 2\n",
  "- : x\n",
  ": ? \n",
  'a:\n- "a" ? x\n',
  "a:\n- 'x' y: b\n",
  "\r\nitems:\n#-,key: |\n  text\nkey: |\n  text\n",
  "{~}\n",
  "[: a]\n",
  "...\n---\na: 1\n",
  "a: 1\n...\n...\n",
  "a: !!float 1\n",
  "a: !custom x\n",
  "%YAML 1.1\n---\na: yes\nb: 012\n",
  "a: 2e308\n",
  `a: ${"9".repeat(400)}\n`,
  "a: &x {b: 1}\nc: *x\n",
  'a: "x\\\n\n  y"\n',
  "\ttb: 1\n",
  `${"k".repeat(1100)}: 1\n`,
  `a: ${"v".repeat(1100)}\n`,
  "a: 1\na: 2\n",
  "1: a\n'1': b\n",
  "[a, b]: c\n",
  "|1\n- \n",
  "Null: &x a: b\n",
  " ---\n",
  "a: %x\n",
  "__proto__: {x: 1}\nconstructor: 2\n",
  "a: 1\n---\nkind: [unclosed\n---\nb: 2\n",
];

describe("manifest parsers", () => {
  it("decides which parser reads a text as the plain patterns do", () => {
    const pieces = [
      "a: b\n",
      "  c: d\n",
      "---\n",
      " ---\n",
      "...\n",
      " ... x\n",
      "a...b\n",
      "- 'q' x\n",
      "x : y\n",
      ":",
      "[:]\n",
      "|2\n",
      "1e308\n",
      "1E+30\n",
      "e12\n",
      "0x",
      "f".repeat(199),
      "7".repeat(99),
      "7".repeat(101),
      "k".repeat(1000),
      ": ",
      "\\\n",
      "!",
      "\t",
      "\u2028",
      "\n",
    ];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 12 }), (parts) => {
        const text = parts.join("");
        expect(fastParserMayRead(text)).toBe(referenceMayRead(text));
      }),
      { numRuns: 5000 },
    );
    for (const text of [`a: ${"9".repeat(200)}\n`, `a: ${"9".repeat(199)}\n`, `${"k".repeat(1025)}: 1\n`]) {
      expect(fastParserMayRead(text)).toBe(referenceMayRead(text));
    }
  });

  it("reads the examples and bench-style manifests with the fast parser, with the reference's result", () => {
    for (const file of examples) {
      const text = readFileSync(file, "utf8");
      expect(fastParserMayRead(text), file).toBe(true);
      expectSameAsReference(text);
    }
    expect(fastParserMayRead(benchManifest)).toBe(true);
    expectSameAsReference(benchManifest);
  });

  it("gives the reference's result on the constructs where the parsers differ", () => {
    for (const text of disagreements) expectSameAsReference(text);
  });

  it("reports the reference parser's message with the document number when js-yaml fails", () => {
    const parsed = parseManifestText(`${benchManifest}---\na: 1\na: 2\n`, "dir/a.yaml");
    expect(parsed.documents).toHaveLength(2);
    expect(parsed.errors).toEqual(["dir/a.yaml: document 3: Map keys must be unique at line 27, column 1:"]);
  });

  it("gives the reference's result on generated YAML", () => {
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }),
    );
    const options = fc.record({
      flowLevel: fc.constantFrom(-1, 0, 1, 2),
      defaultStringType: fc.constantFrom(
        "PLAIN",
        "QUOTE_DOUBLE",
        "QUOTE_SINGLE",
        "BLOCK_LITERAL",
      ) as fc.Arbitrary<"PLAIN" | "QUOTE_DOUBLE" | "QUOTE_SINGLE" | "BLOCK_LITERAL">,
      lineWidth: fc.constantFrom(0, 20, 80),
    });
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 3 }), options, (docs, opts) => {
        expectSameAsReference(docs.map((d) => stringify(d, opts)).join("---\n"));
      }),
      { numRuns: 400 },
    );
  });

  it("gives the reference's result on fuzzed texts", () => {
    const tokens = [
      "a",
      "1",
      "0x1",
      "- ",
      ": ",
      ":",
      "\n",
      "\n  ",
      "\n- ",
      " ",
      "'",
      '"',
      "[",
      "]",
      "{",
      "}",
      ",",
      "#",
      " #c",
      "---\n",
      "...\n",
      "|",
      ">",
      "|-",
      "\t",
      "\\",
      "? ",
      "&x ",
      "*x",
      "!!str ",
      "true",
      "null",
      "~",
      "1.5",
      ".inf",
      "\r\n",
      "%",
      "@",
      "<<",
      "a: b\n",
      "\n  c: d",
      "- x: y\n  z: w\n",
      "key: |\n  text\n",
      "{~",
      "x y",
    ];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...tokens), { minLength: 1, maxLength: 14 }), (parts) => {
        expectSameAsReference(parts.join(""));
      }),
      { numRuns: 3000 },
    );
  });
});
