"""A skill bound to the public pack, for the prompt-injection tests."""

from bot.core.skills import Skill

helper = Skill(
    name="vpn-helper",
    description="Explain wireguard tunnels",
    instructions="You explain WireGuard VPN access in two sentences.",
    packs=("public-docs",),
    tier="small",
)
