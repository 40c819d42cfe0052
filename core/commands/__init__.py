"""Every command, defined once; adapters map these definitions onto their platforms."""

from core.commands.base import (  # noqa: F401
    Arg,
    Command,
    CommandContext,
    Confirm,
    Field,
    Reply,
    parse_text_args,
    resolve,
)
from core.commands.registry import COMMANDS, CONFIRMATIONS, find, run_command, run_confirmation  # noqa: F401
