"""Commands and their handlers: the only place that loads and saves aggregates.

A handler loads the aggregates a command touches, calls their command methods (which check the rules and
trigger events) and saves them all in one append. On a version conflict it reloads and decides again
(bounded); a conflict on a uniqueness claim is a uniqueness error, not a retry.
"""

from scimledger.handlers.admin import *  # noqa: F403
from scimledger.handlers.admin_keys import *  # noqa: F403
from scimledger.handlers.teams import *  # noqa: F403
from scimledger.handlers.users import *  # noqa: F403
from scimledger.handlers.workspaces import *  # noqa: F403
