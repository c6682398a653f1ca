"""Pure logic: request/reply types, skills, routing, prompt assembly, the tier ladder, statistics and review rules."""
