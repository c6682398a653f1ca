"""The package of an installed skill plugin (entry points); the registry tests copy it under a unique name."""

from bot.core.skills import Skill

plugin_skill = Skill(
    name="plugin-skill",
    description="A skill from an installed package",
    instructions="Plugin instructions.",
    command="/plugin",
)
more = [Skill(name="plugin-two", description="d", instructions="i")]
