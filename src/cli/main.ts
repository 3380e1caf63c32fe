/** Entry point of the ipvs-operator command (bin/ipvs-operator runs this file with Node 24). */
import { main } from "./run.ts";

process.exitCode = await main(process.argv.slice(2));
