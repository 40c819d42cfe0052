"""Teams (SPEC §7): membership, the pooled funds and the prize split, the team chats on each
platform and the bridge between them. Every rule is here; the bots only do the platform work."""

from core.services.teams.bridge import (  # noqa: F401
    RelayView,
    post_chat,
    recent_messages,
    record_copy,
    record_edit,
    record_message,
    relay_view,
)
from core.services.teams.chats import (  # noqa: F401
    ChatRow,
    ChatState,
    active_chat_states,
    chat_lock,
    chat_state,
    link_checked,
    may_join_chat,
    record_chat,
    request_link,
    request_sync,
    team_for_chat,
    tell_captain,
    unlink_chat,
    update_chat_meta,
)
from core.services.teams.common import (  # noqa: F401
    RELAY,
    SYNC,
    Member,
    TeamRow,
    clean_team_name,
    members,
    my_team,
    team_by_id,
)
from core.services.teams.membership import (  # noqa: F401
    Departure,
    Invitation,
    TeamInfo,
    accept,
    create_team,
    disband,
    info,
    invite,
    invite_code,
    join_team,
    kick,
    leave,
    make_captain,
    set_spend,
    set_split,
)
from core.services.teams.pool import (  # noqa: F401
    Funded,
    fund,
    leaver_share,
    no_pending_attempts,
    payee_legs,
    pool_shares,
    prize_legs,
    prize_shares,
    return_pool,
)
