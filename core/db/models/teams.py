"""Teams (SPEC §7): members, invitations, pool contributions, team chat and its bridge."""

from __future__ import annotations
