"""One module, several skills: a re-exported list and a private one (the registry tests)."""

from bot.core.skills import Skill

one = Skill(name="one", description="d", instructions="i")
two = Skill(name="two", description="d", instructions="i", command="/second")
_hidden = Skill(name="hidden", description="d", instructions="i")
ALL = [one, two]
