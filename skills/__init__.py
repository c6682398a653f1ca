"""Built-in Tierwise skills: one module per skill, each declaring a `Skill`."""
