"""The wall clock of the programs under test, for test scripts (Python
standard library only).

Both programs run their wall clock LOYALTY_CLOCK_OFFSET_S seconds from the
system's (base/cli.hpp); tests/run-dates.sh sets it to rehearse other days. A
test that builds "now" for a basket or an expectation takes it from here,
never from the system clock, so that it sees the day the programs see.
"""

import datetime
import os
import time

ENV = "LOYALTY_CLOCK_OFFSET_S"


def offset_s():
    text = os.environ.get(ENV, "").strip()
    return int(text) if text else 0


def now():
    """The programs' time, as an aware UTC datetime."""
    return datetime.datetime.fromtimestamp(time.time() + offset_s(), datetime.timezone.utc)


def rfc3339(t):
    """An aware datetime as RFC 3339 with its offset, to the second."""
    text = t.strftime("%Y-%m-%dT%H:%M:%S%z")
    return text[:-2] + ":" + text[-2:]
