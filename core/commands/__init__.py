"""Every command, defined once; adapters map these definitions onto their platforms."""

from core.commands.base import (  # noqa: F401
    Arg,
    Attachment,
    Command,
    CommandContext,
    Confirm,
    Field,
    Reply,
    parse_text_args,
    resolve,
)
from core.commands.registry import (  # noqa: F401
    COMMANDS,
    CONFIRMATIONS,
    commands_for,
    find,
    run_command,
    run_confirmation,
    waiting_note,
)
