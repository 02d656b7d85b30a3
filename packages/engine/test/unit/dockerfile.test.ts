/**
 * The builder's planning on its own, no engine and no root: the Dockerfile parser (continuations,
 * directives, refusals with line numbers), Docker's word expansion, and .dockerignore matching.
 */
import { describe, expect, it } from "vitest";
import { isExcluded, parseDockerignore } from "../../src/build/context";
import { parseDockerfile } from "../../src/build/parser";
import { expandWord, expandWords } from "../../src/build/shell";

describe("Dockerfile parser", () => {
  it("joins continuations, drops comments inside them, keeps the line number of the start", () => {
    const p = parseDockerfile("# top comment\n\nfrom busybox\nRUN echo a \\\n  # inside\n    && echo b\nCMD [\"x\", \"y\"]\nENTRYPOINT [not json\n");
    expect(p.instructions.map((i) => [i.keyword, i.line, i.original])).toEqual([
      ["FROM", 3, "from busybox"],
      ["RUN", 4, "RUN echo a     && echo b"],
      ["CMD", 7, 'CMD ["x", "y"]'],
      ["ENTRYPOINT", 8, "ENTRYPOINT [not json"],
    ]);
    expect(p.instructions[2]!.json).toEqual(["x", "y"]);
    expect(p.instructions[3]!.json).toBeNull(); // not JSON: the shell form, as Docker falls back
  });

  it("honours the escape directive only at the top, and warns about # syntax", () => {
    const p = parseDockerfile("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nRUN echo a `\n  b\n# escape=\\\n");
    expect(p.escape).toBe("`");
    expect(p.instructions[1]!.original).toBe("RUN echo a   b");
    expect(p.warnings.join("\n")).toMatch(/syntax=docker\/dockerfile:1.*ignores it/);
    expect(parseDockerfile("FROM busybox\n# escape=`\nRUN a \\\n b\n").escape).toBe("\\");
  });

  it("refuses unknown instructions, BuildKit-only syntax and bad flags, with the line number", () => {
    expect(() => parseDockerfile("FROM busybox\n\nFOO bar\n")).toThrow("dockerfile parse error line 3: unknown instruction: FOO");
    expect(() => parseDockerfile("FROM busybox\nRUN <<EOF\necho hi\nEOF\n")).toThrow(/line 2: a heredoc \(<<EOF\) in RUN requires BuildKit/);
    expect(() => parseDockerfile("FROM busybox\nRUN --mount=type=cache,target=/x true\n")).toThrow(/line 2: the --mount option of RUN requires BuildKit/);
    expect(() => parseDockerfile("FROM busybox\nCOPY --link a /b\n")).toThrow(/the --link option of COPY requires BuildKit/);
    expect(() => parseDockerfile("FROM busybox\nCOPY --chmod=644 a /b\n")).toThrow(/the --chmod option of COPY requires BuildKit/);
    expect(() => parseDockerfile("FROM busybox\nCOPY --nope a /b\n")).toThrow("dockerfile parse error line 2: Unknown flag: nope");
    expect(() => parseDockerfile("FROM busybox\nSHELL /bin/bash -c\n")).toThrow("SHELL requires the arguments to be in JSON form");
    expect(() => parseDockerfile("FROM\n")).toThrow("FROM requires either one or three arguments");
    expect(() => parseDockerfile("FROM busybox\nONBUILD ONBUILD RUN x\n")).toThrow(/Chaining ONBUILD/);
    expect(parseDockerfile("FROM busybox\nRUN echo $((1<<2))\n").instructions).toHaveLength(2); // a shift, not a heredoc
  });

  it("expands variables like Docker's lexer", () => {
    const env = ["A=1", "B=two words", "E="];
    expect(expandWord("$A-${A}-${NOPE:-dflt}-${A:+alt}-${E:-empty}-${E-set}", env)).toBe("1-1-dflt-alt-empty-");
    expect(expandWord("'$A' \"$A\" \\$A", env)).toBe("$A 1 $A");
    expect(expandWords('"$B" $B x""', env)).toEqual(["two words", "two words", "x"]);
    expect(expandWord("`$A", env, "`")).toBe("$A");
  });

  it("matches .dockerignore patterns like Docker (**, exceptions, parent directories)", () => {
    const p = parseDockerignore("# comment\n*.log\n**/secret*\nbuild\n!build/keep.txt\n/abs/x\n");
    const ex = (f: string) => isExcluded(f, p);
    expect([ex("a.log"), ex("dir/a.log"), ex("deep/er/secret.env"), ex("secret"), ex("build/out.o"), ex("build/keep.txt"), ex("abs/x/y"), ex("src/main.c")]).toEqual([true, false, true, true, true, false, true, false]);
  });
});
