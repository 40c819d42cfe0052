"""The confirm / cancel buttons. Their custom_id (``cf:<token>:y|n``) carries everything needed to
answer a press, so buttons sent before a restart still work: discord.py matches presses against the
template of a DynamicItem, and no view is kept in memory per message."""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from bots.common import confirm as wire
from bots.discord.render import MAX_LABEL, custom_id
from core.commands import Confirm


class ConfirmationHandler(Protocol):
    def first_delivery(self, interaction: discord.Interaction) -> bool: ...

    async def on_confirmation(
        self, interaction: discord.Interaction, token: str, accept: bool
    ) -> None: ...


def _handler(interaction: discord.Interaction) -> ConfirmationHandler:
    return interaction.client.bounty  # type: ignore[attr-defined]


class ConfirmButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=wire.PATTERN):
    def __init__(
        self,
        token: str,
        accept: bool,
        *,
        label: str | None = None,
        disabled: bool = False,
        style: discord.ButtonStyle | None = None,
    ) -> None:
        style = style or (discord.ButtonStyle.success if accept else discord.ButtonStyle.secondary)
        label = (label or ("Confirm" if accept else "Cancel"))[:MAX_LABEL]
        super().__init__(
            discord.ui.Button(
                label=label, style=style, custom_id=custom_id(token, accept), disabled=disabled
            )
        )
        self.token = token
        self.accept = accept

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str]
    ) -> ConfirmButton:
        return cls(match["token"], match["answer"] == "y", label=item.label, style=item.style)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return _handler(interaction).first_delivery(interaction)

    async def callback(self, interaction: discord.Interaction) -> None:
        await _handler(interaction).on_confirmation(interaction, self.token, self.accept)


def confirm_view(confirm: Confirm, *, disabled: bool = False) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ConfirmButton(confirm.token, True, label=confirm.accept_label, disabled=disabled))
    view.add_item(
        ConfirmButton(confirm.token, False, label=confirm.cancel_label, disabled=disabled)
    )
    return view


def pressed_view(message: discord.Message | None, pressed_custom_id: str) -> discord.ui.View | None:
    """The buttons of ``message`` disabled, the pressed one highlighted; None if it had none."""
    if message is None or not message.components:
        return None
    view = discord.ui.View(timeout=None)
    for row in message.components:
        for component in getattr(row, "children", ()):
            cid = getattr(component, "custom_id", None)
            if cid is None or not cid.startswith("cf:"):
                continue
            token, _, answer = cid[3:].rpartition(":")
            pressed = cid == pressed_custom_id
            style = discord.ButtonStyle.primary if pressed else discord.ButtonStyle.secondary
            view.add_item(
                ConfirmButton(
                    token, answer == "y", label=component.label, disabled=True, style=style
                )
            )
    return view if view.children else None
