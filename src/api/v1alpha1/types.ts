import type { z } from "zod";
import type { ConditionSchema, LabelSelectorSchema } from "./common.ts";

export type Condition = z.output<typeof ConditionSchema>;
export type LabelSelector = z.output<typeof LabelSelectorSchema>;
