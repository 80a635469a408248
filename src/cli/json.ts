import { writeFile } from 'node:fs/promises';

/** Write a JSON report to `path`, or to stdout for "-". */
export async function writeJson(path: string, value: unknown): Promise<void> {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (path === '-') process.stdout.write(text);
  else await writeFile(path, text);
}
