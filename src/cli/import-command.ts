/**
 * `ipvs-operator import [FILE|-]`: reads `ipvsadm -Sn` output and writes VirtualService and RealServer
 * YAML that `plan` turns back into the same table.
 * Exit status: 0, or 3 when some lines or entries could not be imported (reported on stderr).
 */
import { readFile } from "node:fs/promises";
import { text } from "node:stream/consumers";
import { importResources, renderResourcesYaml } from "../model/import-resources.ts";
import { parseIpvsadmSave } from "../model/ipvsadm-parse.ts";
import { CliError } from "./cli-error.ts";
import { parseOptions } from "./options.ts";

const HELP = `Usage: ipvs-operator import [FILE|-] [--namespace NS] [--name-prefix PREFIX]

Reads 'ipvsadm -Sn' (or 'ipvsadm -S') output from FILE or stdin and prints VirtualService and
RealServer manifests. Example: ipvsadm -Sn | ipvs-operator import --namespace edge > lb.yaml
`;

export async function importCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    "import",
    args,
    { namespace: { type: "string" }, "name-prefix": { type: "string" } },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 1) throw new CliError("import: give at most one file (or - for stdin)");
  const source = positionals[0] ?? "-";
  let input: string;
  try {
    input = source === "-" ? await text(process.stdin) : await readFile(source, "utf8");
  } catch (error) {
    throw new CliError(`import: cannot read ${source}: ${(error as NodeJS.ErrnoException).code ?? error}`, 1);
  }
  const parsed = parseIpvsadmSave(input);
  for (const problem of parsed.problems)
    process.stderr.write(`problem: line ${problem.line}: ${problem.message}\n`);
  const imported = importResources(parsed.table, {
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(values["name-prefix"] ? { namePrefix: values["name-prefix"] } : {}),
  });
  for (const p of imported.problems) process.stderr.write(`problem: ${p.subject}: ${p.message}\n`);
  process.stdout.write(renderResourcesYaml(imported.objects));
  return parsed.problems.length + imported.problems.length > 0 ? 3 : 0;
}
