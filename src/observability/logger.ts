/**
 * The pino root logger is created once, in the entry point, and handed down as child loggers
 * (`component`, `node`). Nothing else creates loggers.
 */
import { type LevelWithSilent, type Logger, pino } from "pino";

export type { Logger };

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Where JSON lines go; stderr for CLI commands whose stdout is data. */
  destination?: 1 | 2;
}

export function createRootLogger(options: LoggerOptions): Logger {
  return pino(
    { level: options.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: options.destination ?? 2, sync: true }),
  );
}
