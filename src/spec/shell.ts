/**
 * Shell-style word splitting as kickstart uses it (pykickstart splits each
 * command line with Python's `shlex.split(line, comments=True)`, POSIX mode):
 * single quotes are literal, double quotes allow `\"`, `\\`, `\$`, `` \` ``
 * escapes, a backslash outside quotes escapes the next character, and `#`
 * starts a comment only at the beginning of a word. No expansion happens.
 */
export class ShellSyntaxError extends Error {}

export function shellSplit(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) { words.push(cur); cur = ''; inWord = false; }
      i++;
      continue;
    }
    if (c === '#' && !inWord) break;
    inWord = true;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new ShellSyntaxError('no closing quotation');
      cur += line.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new ShellSyntaxError('no closing quotation');
        const d = line[i]!;
        if (d === '"') { i++; break; }
        if (d === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) { cur += line[i + 1]; i += 2; continue; }
        cur += d;
        i++;
      }
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new ShellSyntaxError('no escaped character');
      cur += line[i + 1];
      i += 2;
    } else {
      cur += c;
      i++;
    }
  }
  if (inWord) words.push(cur);
  return words;
}
