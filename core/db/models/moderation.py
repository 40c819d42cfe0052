"""Moderation and identity across platforms (SPEC §8): bans, notes, account links."""

from __future__ import annotations
