"""What all our aggregates share: replay that allows a stream to be re-opened, and the re-open itself.

Some facts come and go on one stream: a uniqueness claim is released and later taken again, a member leaves a
team and comes back. The stream's creation event (``UniquenessClaimed``, ``TeamMemberAdded``) is then
triggered again, so that one event type means the same thing every time; on replay a creation event starts
the aggregate's state afresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from eventsourcing.domain import Aggregate, CanInitAggregate, CanMutateAggregate
from eventsourcing.utils import get_topic

A = TypeVar("A", bound=Aggregate)


def replay(events: Iterable[Any], aggregate: Any = None) -> Any:
    """Fold events into an aggregate; a creation event (re)initialises it (see the module docstring)."""
    for event in events:
        assert isinstance(event, CanMutateAggregate)
        aggregate = event.mutate(None if isinstance(event, CanInitAggregate) else aggregate)
    return aggregate


def reopen(existing: A, event_class: type[Any], **kwargs: Any) -> A:
    """Trigger ``existing``'s creation event again, as the stream's next version."""
    event = event_class(
        originator_id=existing.id,
        originator_version=existing.version + 1,
        timestamp=event_class.create_timestamp(),
        originator_topic=get_topic(type(existing)),
        **kwargs,
    )
    aggregate: A = event.mutate(None)
    aggregate.pending_events.extend(existing.collect_events())
    aggregate.pending_events.append(event)
    return aggregate
